package io.zcow.source;

import java.util.Arrays;

/**
 * The guest clusters that changed since a previous backup, as sorted, disjoint, non-adjacent runs
 * of cluster indexes. Immutable and thread safe. Built from byte extents rounded out to whole
 * clusters: a change of one byte makes its whole cluster dirty.
 */
public final class DirtyClusters {
  private final int clusterSize;
  private final long clusters; // clusters of the source, the last one possibly partial
  private final long[] starts;
  private final long[] ends; // exclusive

  private DirtyClusters(int clusterSize, long clusters, long[] starts, long[] ends) {
    this.clusterSize = clusterSize;
    this.clusters = clusters;
    this.starts = starts;
    this.ends = ends;
  }

  /** Collects dirty byte extents in ascending order of offset ({@link #add}), then {@link #build}. */
  public static Builder builder(long sourceSize, int clusterSize) {
    return new Builder(sourceSize, clusterSize);
  }

  public int clusterSize() {
    return clusterSize;
  }

  /** Number of runs. */
  public int runs() {
    return starts.length;
  }

  /** The first cluster of run {@code i}. */
  public long runStart(int i) {
    return starts[i];
  }

  /** The cluster after run {@code i}. */
  public long runEnd(int i) {
    return ends[i];
  }

  /** How many clusters are dirty. */
  public long count() {
    long n = 0;
    for (int i = 0; i < starts.length; i++) {
      n += ends[i] - starts[i];
    }
    return n;
  }

  /** Clusters of the source (the last one possibly partial). */
  public long clusters() {
    return clusters;
  }

  public boolean isDirty(long cluster) {
    int i = Arrays.binarySearch(starts, cluster);
    if (i >= 0) {
      return true;
    }
    int before = -i - 2;
    return before >= 0 && cluster < ends[before];
  }

  /** The first dirty cluster at or after {@code cluster}; {@link #clusters()} when none is. */
  public long nextDirty(long cluster) {
    int i = Arrays.binarySearch(starts, cluster);
    if (i >= 0) {
      return cluster;
    }
    int before = -i - 2;
    if (before >= 0 && cluster < ends[before]) {
      return cluster;
    }
    return before + 1 < starts.length ? starts[before + 1] : clusters;
  }

  /** The first clean cluster at or after {@code cluster} (may be {@link #clusters()}: the end). */
  public long nextClean(long cluster) {
    int i = Arrays.binarySearch(starts, cluster);
    int run = i >= 0 ? i : -i - 2;
    return run >= 0 && cluster < ends[run] ? ends[run] : cluster;
  }

  /**
   * These clusters in at most {@code maxRuns} runs: when there are more, the runs separated by the
   * smallest gaps are merged (the gaps count as dirty: stored again, never lost).
   */
  public DirtyClusters coarsened(int maxRuns) {
    if (maxRuns < 1) {
      throw new IllegalArgumentException("maxRuns must be positive: " + maxRuns);
    }
    if (starts.length <= maxRuns) {
      return this;
    }
    long[] gaps = new long[starts.length - 1];
    for (int i = 1; i < starts.length; i++) {
      gaps[i - 1] = starts[i] - ends[i - 1];
    }
    long[] sorted = gaps.clone();
    Arrays.sort(sorted);
    long merge = sorted[starts.length - maxRuns - 1]; // merging every gap up to this leaves <= maxRuns
    long[] s = new long[maxRuns];
    long[] e = new long[maxRuns];
    int n = 0;
    s[0] = starts[0];
    e[0] = ends[0];
    for (int i = 1; i < starts.length; i++) {
      if (gaps[i - 1] <= merge) {
        e[n] = ends[i];
      } else {
        n++;
        s[n] = starts[i];
        e[n] = ends[i];
      }
    }
    return new DirtyClusters(clusterSize, clusters, Arrays.copyOf(s, n + 1), Arrays.copyOf(e, n + 1));
  }

  @Override
  public String toString() {
    StringBuilder b = new StringBuilder("DirtyClusters[");
    for (int i = 0; i < starts.length; i++) {
      b.append(i == 0 ? "" : ", ").append(starts[i]).append("..").append(ends[i] - 1);
    }
    return b.append(']').toString();
  }

  /** Not thread safe. */
  public static final class Builder {
    private final long size;
    private final int clusterSize;
    private long[] starts = new long[16];
    private long[] ends = new long[16];
    private int n;

    private Builder(long size, int clusterSize) {
      if (size < 0) {
        throw new IllegalArgumentException("sourceSize must not be negative: " + size);
      }
      if (clusterSize <= 0 || Integer.bitCount(clusterSize) != 1) {
        throw new IllegalArgumentException("clusterSize must be a power of two: " + clusterSize);
      }
      this.size = size;
      this.clusterSize = clusterSize;
    }

    /** Bytes [offset, offset + length) changed; extents come in ascending order and may overlap runs already added. */
    public Builder add(long offset, long length) {
      if (offset < 0 || length <= 0) {
        throw new IllegalArgumentException("dirty extent at " + offset + " of " + length + " bytes");
      }
      long end = Math.min(offset + length, size);
      if (offset >= end) {
        return this;
      }
      long first = offset / clusterSize;
      long last = (end + clusterSize - 1) / clusterSize;
      if (n > 0 && first < starts[n - 1]) {
        throw new IllegalArgumentException("dirty extent at " + offset + " comes before one already added");
      }
      if (n > 0 && first <= ends[n - 1]) {
        ends[n - 1] = Math.max(ends[n - 1], last);
        return this;
      }
      if (n == starts.length) {
        starts = Arrays.copyOf(starts, n * 2);
        ends = Arrays.copyOf(ends, n * 2);
      }
      starts[n] = first;
      ends[n] = last;
      n++;
      return this;
    }

    public DirtyClusters build() {
      return new DirtyClusters(clusterSize, (size + clusterSize - 1) / clusterSize, Arrays.copyOf(starts, n),
          Arrays.copyOf(ends, n));
    }
  }
}
