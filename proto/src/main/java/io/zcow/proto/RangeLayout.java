package io.zcow.proto;

/**
 * The range arithmetic of a job, in one place: how its disk is split into ranges of whole guest
 * clusters, and which clusters and source bytes each range covers. The last range may be shorter;
 * its last cluster may be partial (the source size need not be a multiple of the cluster size).
 *
 * @param sourceSize bytes of source
 * @param clusterSize guest cluster size, a power of two
 * @param rangeSize bytes per range, a positive multiple of the cluster size
 */
public record RangeLayout(long sourceSize, int clusterSize, long rangeSize) {
  public RangeLayout {
    if (sourceSize <= 0) {
      throw new IllegalArgumentException("sourceSize must be positive: " + sourceSize);
    }
    if (clusterSize <= 0 || Integer.bitCount(clusterSize) != 1) {
      throw new IllegalArgumentException("clusterSize must be a power of two: " + clusterSize);
    }
    if (rangeSize <= 0 || rangeSize % clusterSize != 0) {
      throw new IllegalArgumentException("rangeSize " + rangeSize + " must be a positive multiple of the cluster size "
          + clusterSize);
    }
    if (ceilDiv(sourceSize, rangeSize) > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("rangeSize " + rangeSize + " splits " + sourceSize + " bytes into more than "
          + Integer.MAX_VALUE + " ranges");
    }
  }

  /** The layout a JobSpec describes (its checks are {@link JobSpecs#problem}'s). */
  public static RangeLayout of(JobSpec spec) {
    return new RangeLayout(spec.getSourceSize(), spec.getClusterSize(), spec.getRangeSize());
  }

  /** The source size rounded up to 512 bytes, as qcow2 needs it. */
  public long virtualSize() {
    return (sourceSize + 511) & ~511L;
  }

  public long guestClusters() {
    return ceilDiv(virtualSize(), clusterSize);
  }

  public long rangeClusters() {
    return rangeSize / clusterSize;
  }

  public int ranges() {
    return (int) ceilDiv(sourceSize, rangeSize);
  }

  public boolean contains(long range) {
    return range >= 0 && range < ranges();
  }

  public long firstCluster(long range) {
    return range * rangeClusters();
  }

  /** One past the last guest cluster of the range. */
  public long endCluster(long range) {
    return Math.min((range + 1) * rangeClusters(), guestClusters());
  }

  public long clusters(long range) {
    return endCluster(range) - firstCluster(range);
  }

  /** Source byte offset of the range. */
  public long offset(long range) {
    return range * rangeSize;
  }

  /** Source bytes in the range: the range size, less for the last range. */
  public long length(long range) {
    return Math.min(rangeSize, sourceSize - offset(range));
  }

  /** The range a task's offset and length must describe, or -1 when they describe none. */
  public long rangeAt(long offset, long length) {
    if (offset < 0 || offset % rangeSize != 0) {
      return -1;
    }
    long r = offset / rangeSize;
    return r < ranges() && length == length(r) ? r : -1;
  }

  /** The first task of a range. */
  public RangeTask task(String jobId, long range, int attempt) {
    return RangeTask.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(jobId).setRangeIndex(range)
        .setOffset(offset(range)).setLength(length(range)).setAttempt(attempt).build();
  }

  public static long ceilDiv(long a, long b) {
    return (a + b - 1) / b;
  }
}
