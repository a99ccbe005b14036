package io.zcow.qcow2;

import io.zcow.source.DirtyClusters;
import java.util.ArrayList;
import java.util.List;

/**
 * Which guest clusters an incremental image stores: those the dirty bitmap marks, and every
 * cluster from the one holding the backing file's end on (a source that grew: the tail is new,
 * whatever the bitmap says, and the backing file's partial last cluster may have grown data).
 * The one answer to "changed?" for {@code zcow convert} and for the writer of a cluster job, so
 * both store exactly the same clusters. Immutable and thread safe.
 */
public final class IncrementalPlan {
  private final DirtyClusters dirty;
  private final long grownFrom; // first cluster that counts as changed because the source grew
  private final long clusters;

  /**
   * @param backing the previous image (its virtual size decides the grown tail)
   * @param geometry the new image's
   */
  public IncrementalPlan(DirtyClusters dirty, BackingFile backing, ImageGeometry geometry) {
    int clusterSize = geometry.clusterSize();
    if (dirty.clusterSize() != clusterSize) {
      throw new IllegalArgumentException("dirty clusters of " + dirty.clusterSize() + " bytes for an image of "
          + clusterSize);
    }
    this.dirty = dirty;
    this.clusters = geometry.guestClusters();
    long backingSize = backing.virtualSize();
    // Whole clusters of the backing file only: a partial last one may have grown data.
    this.grownFrom = backingSize >= geometry.virtualSize() ? clusters : Math.min(backingSize / clusterSize, clusters);
  }

  /** The first changed cluster at or after {@code c}; {@code clusters} when none is. */
  public long nextChanged(long c) {
    long d = dirty.nextDirty(c);
    return Math.min(Math.min(d, grownFrom), clusters);
  }

  /** The first unchanged cluster at or after {@code c}; {@code clusters} when none is. */
  public long nextUnchanged(long c) {
    if (c >= grownFrom) {
      return clusters;
    }
    return Math.min(dirty.nextClean(c), grownFrom);
  }

  /** The changed clusters in [from, to) as runs {first, end (exclusive)}, ascending. */
  public List<long[]> changedIn(long from, long to) {
    List<long[]> runs = new ArrayList<>();
    long end = Math.min(to, clusters);
    for (long c = nextChanged(from); c < end; ) {
      long stop = Math.min(nextUnchanged(c), end);
      runs.add(new long[] {c, stop});
      c = stop < end ? nextChanged(stop) : end;
    }
    return runs;
  }

  /** How many clusters in [from, to) changed. */
  public long changedCount(long from, long to) {
    long n = 0;
    for (long[] run : changedIn(from, to)) {
      n += run[1] - run[0];
    }
    return n;
  }
}
