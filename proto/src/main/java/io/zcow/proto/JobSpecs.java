package io.zcow.proto;

/**
 * The checks every role makes of a JobSpec at the edge, in one place, so a spec one role accepts
 * no other role refuses (and one no role can honour never reaches a loop as an exception).
 */
public final class JobSpecs {
  /** Cluster sizes zcow supports: 4 KiB (the O_DIRECT block) to 2 MiB. */
  public static final int MIN_CLUSTER_SIZE = 1 << 12;
  public static final int MAX_CLUSTER_SIZE = 1 << 21;
  /**
   * The most changed-cluster runs a plan carries: 16 bytes or less each, so a JobSpec stays well
   * under a Kafka record's 1 MiB.
   */
  public static final int MAX_CHANGED_RUNS = 32_768;
  /** Bytes per cluster of a task's previous_digests (SHA-256). */
  public static final int DIGEST_BYTES = 32;
  /**
   * The most previous_digests bytes a RangeTask carries (24 576 clusters): with the rest of the
   * task well under a Kafka record's 1 MiB. A by_digest job's ranges are at most this many
   * clusters: 512 MiB ranges at 64 KiB clusters (8 192), 96 MiB at 4 KiB.
   */
  public static final int MAX_TASK_DIGEST_BYTES = 768 << 10;

  /** The largest range a by_digest job of this cluster size may have: {@code rangeSize} or less. */
  public static long digestRangeSize(long rangeSize, int clusterSize) {
    return Math.min(rangeSize, (long) (MAX_TASK_DIGEST_BYTES / DIGEST_BYTES) * clusterSize);
  }

  private JobSpecs() {}

  /** Null when the spec describes a job zcow can run, else why not (naming the field). */
  public static String problem(JobSpec spec) {
    String id = JobIds.problem(spec.getJobId());
    if (id != null) {
      return id;
    }
    long size = spec.getSourceSize();
    if (size <= 0) {
      return "source_size " + size + " is not positive";
    }
    long virtual = (size + 511) & ~511L;
    if (spec.getVirtualSize() != virtual) {
      return "virtual_size " + spec.getVirtualSize() + " is not source_size " + size + " rounded up to 512 ("
          + virtual + ")";
    }
    int cs = spec.getClusterSize();
    if (cs < MIN_CLUSTER_SIZE || cs > MAX_CLUSTER_SIZE || Integer.bitCount(cs) != 1) {
      return "cluster_size " + cs + " is not a power of two from " + MIN_CLUSTER_SIZE + " to " + MAX_CLUSTER_SIZE;
    }
    long rs = spec.getRangeSize();
    if (rs <= 0 || rs % cs != 0) {
      return "range_size " + rs + " is not a positive multiple of cluster_size " + cs;
    }
    if (RangeLayout.ceilDiv(size, rs) > Integer.MAX_VALUE) {
      return "range_size " + rs + " splits the disk into more than " + Integer.MAX_VALUE + " ranges";
    }
    if (spec.getCodec() != WireCodec.WIRE_CODEC_ZSTD && spec.getCodec() != WireCodec.WIRE_CODEC_ZLIB) {
      return "codec " + spec.getCodecValue() + " is not supported";
    }
    if (spec.getTargetPath().isEmpty()) {
      return "no target_path";
    }
    if (spec.getSourceUri().isEmpty()) {
      return "no source_uri";
    }
    try {
      Topics.chunks(spec.getWriterGroup());
    } catch (RuntimeException e) {
      return "writer_group: " + e.getMessage();
    }
    long ranges = RangeLayout.ceilDiv(size, rs);
    for (RangeRun run : spec.getPlan().getZeroRangesList()) {
      if (run.getCount() < 1 || run.getFirst() >= ranges || run.getCount() > ranges - run.getFirst()) {
        return "plan: zero ranges " + run.getFirst() + "+" + run.getCount() + " are outside the job's " + ranges
            + " ranges";
      }
    }
    if (spec.getBackingPath().isEmpty() && spec.getPlanOrBuilder().getChangedCount() > 0) {
      return "plan: changed clusters without a backing_path";
    }
    if (spec.getByDigest()) {
      if (spec.getBackingPath().isEmpty() || spec.getPlanOrBuilder().getChangedCount() > 0) {
        return "by_digest needs a backing_path and no changed clusters in the plan";
      }
      if (rs / cs * DIGEST_BYTES > MAX_TASK_DIGEST_BYTES) {
        return "by_digest: a range of " + rs + " bytes has " + rs / cs * DIGEST_BYTES
            + " bytes of digests, more than a task carries (" + MAX_TASK_DIGEST_BYTES + ")";
      }
    }
    String runs = runsProblem(spec.getPlan().getChangedList(), 0, RangeLayout.of(spec).guestClusters(),
        MAX_CHANGED_RUNS);
    return runs == null ? null : "plan: changed " + runs;
  }

  /**
   * Null when {@code runs} are non-empty, ascending, disjoint runs inside clusters [from, to), at
   * most {@code max} of them; else what is wrong.
   */
  public static String runsProblem(java.util.List<ClusterRun> runs, long from, long to, int max) {
    if (runs.size() > max) {
      return "has " + runs.size() + " runs, more than " + max;
    }
    long next = from;
    for (ClusterRun run : runs) {
      if (run.getCount() < 1 || run.getFirst() < next || run.getFirst() >= to || run.getCount() > to - run.getFirst()) {
        return "run " + run.getFirst() + "+" + run.getCount() + " is empty, out of order or outside clusters " + from
            + ".." + (to - 1);
      }
      next = run.getFirst() + run.getCount();
    }
    return null;
  }

  /** Whether the job writes an overlay on a previous image. */
  public static boolean isIncremental(JobSpec spec) {
    return !spec.getBackingPath().isEmpty();
  }

  /** Whether the job has ended: no task of it runs any more. */
  public static boolean isTerminal(JobState s) {
    return s == JobState.JOB_STATE_DONE || s == JobState.JOB_STATE_FAILED || s == JobState.JOB_STATE_CANCELLED;
  }
}
