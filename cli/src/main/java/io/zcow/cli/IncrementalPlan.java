package io.zcow.cli;

import io.zcow.source.DirtyClusters;

/**
 * Which guest clusters an incremental image stores: those the dirty bitmap marks, and every
 * cluster from the one holding the backing file's end on (a source that grew: the tail is new,
 * whatever the bitmap says, and the backing file's partial last cluster may have grown data).
 * Immutable and thread safe.
 */
final class IncrementalPlan {
  private final DirtyClusters dirty;
  private final long grownFrom; // first cluster that counts as changed because the source grew
  private final long clusters;

  IncrementalPlan(DirtyClusters dirty, long backingSize, long virtualSize, int clusterSize, long clusters) {
    if (dirty.clusterSize() != clusterSize) {
      throw new IllegalArgumentException("dirty clusters of " + dirty.clusterSize() + " bytes for an image of "
          + clusterSize);
    }
    this.dirty = dirty;
    this.clusters = clusters;
    // Whole clusters of the backing file only: a partial last one may have grown data.
    this.grownFrom = backingSize >= virtualSize ? clusters : Math.min(backingSize / clusterSize, clusters);
  }

  /** The first changed cluster at or after {@code c}; {@code clusters} when none is. */
  long nextChanged(long c) {
    long d = dirty.nextDirty(c);
    return Math.min(Math.min(d, grownFrom), clusters);
  }

  /** The first unchanged cluster at or after {@code c}; {@code clusters} when none is. */
  long nextUnchanged(long c) {
    if (c >= grownFrom) {
      return clusters;
    }
    return Math.min(dirty.nextClean(c), grownFrom);
  }
}
