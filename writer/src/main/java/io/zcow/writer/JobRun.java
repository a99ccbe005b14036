package io.zcow.writer;

import io.zcow.BadInputException;
import io.zcow.TargetIoException;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Progress;
import io.zcow.proto.RangeLayout;
import io.zcow.qcow2.Codec;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.qcow2.ImageOptions;
import io.zcow.qcow2.IncrementalPlan;
import io.zcow.proto.ClusterRun;
import io.zcow.proto.RangeTask;
import io.zcow.source.DirtyClusters;
import io.zcow.qcow2.ImageStats;
import io.zcow.qcow2.ImageWriter;
import io.zcow.qcow2.TargetCache;
import java.nio.file.Path;
import java.util.BitSet;

/**
 * One job the writer term knows: its spec, its open image, its pacer, and where it is in its
 * lifecycle. Owned by the term's thread.
 */
final class JobRun {
  /** OPEN while its image takes chunks; the others are ends, moved to by {@link Transitions} only. */
  enum State { OPEN, DONE, FAILED, CANCELLED }

  /** An end asked for while a batch of records is being applied: taken between batches. */
  record EndRequest(JobState state, String reason) {}

  final JobSpec spec;
  final String id;
  /** Null for a job that ended before its image could be opened. */
  final Path target;
  final RangeLayout layout;
  final ImageOptions options;
  /** Incremental jobs: the clusters the image stores (the others read through to the backing file); else null. */
  final IncrementalPlan changes;
  /** Incremental jobs: clusters the image stores; unchanged clusters marked in this term's image. */
  private final long changedClusters;
  private long unchangedMarked;
  ImageWriter image;
  RangePacer pacer;
  State state = State.OPEN;
  EndRequest endRequest;
  /**
   * Set with an end request when the job's target failed (full, an I/O error): that end takes no
   * checkpoint, which would write and fsync the same image again.
   */
  TargetIoException targetFailed;
  /** The image checkpoint last committed for this job (null before any): the next commit's "previous". */
  byte[] committedImageCheckpoint;
  /** Ranges known complete (events sent for them). */
  BitSet complete = new BitSet();
  long rejected;
  long requeued;
  /** By-digest jobs: clusters workers read and found unchanged, accepted in this term's image. */
  long unchangedReceived;

  JobRun(JobSpec spec, Path target, RangeLayout layout, ImageOptions options) {
    this.spec = spec;
    this.id = spec.getJobId();
    this.target = target;
    this.layout = layout;
    this.options = options;
    this.changes = options == null || options.backing() == null || spec.getByDigest() ? null : planOf(spec, options);
    this.changedClusters = changes == null ? 0 : changes.changedCount(0, layout.guestClusters());
  }

  /** The spec's changed runs (checked at the edge: ascending, inside the disk) and the grown tail. */
  private static IncrementalPlan planOf(JobSpec spec, ImageOptions options) {
    int cs = spec.getClusterSize();
    DirtyClusters.Builder b = DirtyClusters.builder(spec.getSourceSize(), cs);
    for (ClusterRun run : spec.getPlan().getChangedList()) {
      b.add(run.getFirst() * cs, run.getCount() * cs);
    }
    return new IncrementalPlan(b.build(), options.backing(), options.geometry());
  }

  /**
   * Incremental jobs: marks every range without a changed cluster complete (unchanged: no L2
   * entry, nothing issued). Ranges with changes are marked when first issued ({@link
   * #markUnchanged}), so only ranges in flight hold a cluster bitmap.
   */
  void markUnchangedRanges() {
    if (changes == null) {
      return;
    }
    for (int r = 0; r < layout.ranges(); r++) {
      long first = layout.firstCluster(r);
      long end = layout.endCluster(r);
      if (changes.nextChanged(first) >= end) {
        image.putUnchanged(first, end - first);
      }
    }
  }

  /**
   * Incremental jobs, once the image is open and the pacer restored: counts the unchanged clusters
   * of the ranges complete or issued (their marks are in the image), for {@link #progress}.
   */
  void countUnchanged() {
    if (changes == null) {
      return;
    }
    unchangedMarked = 0;
    for (int r = complete.nextSetBit(0); r >= 0; r = complete.nextSetBit(r + 1)) {
      unchangedMarked += unchangedIn(r);
    }
    for (io.zcow.proto.IssuedRange i : pacer.issued()) {
      unchangedMarked += unchangedIn(i.getRangeIndex());
    }
  }

  private long unchangedIn(long range) {
    long first = layout.firstCluster(range);
    long end = layout.endCluster(range);
    return end - first - changes.changedCount(first, end);
  }

  /** Incremental jobs: the clusters of a task's range that it does not ask for did not change. */
  void markUnchanged(RangeTask task) {
    if (changes == null || task.getChangedCount() == 0) {
      return;
    }
    unchangedMarked += unchangedIn(task.getRangeIndex());
    long c = layout.firstCluster(task.getRangeIndex());
    for (ClusterRun run : task.getChangedList()) {
      if (run.getFirst() > c) {
        image.putUnchanged(c, run.getFirst() - c);
      }
      c = run.getFirst() + run.getCount();
    }
    long end = layout.endCluster(task.getRangeIndex());
    if (end > c) {
      image.putUnchanged(c, end - c);
    }
  }

  /** A job that ended before anything of it was opened. */
  static JobRun ended(JobSpec spec, State state) {
    JobRun run = new JobRun(spec, null, null, null);
    run.state = state;
    return run;
  }

  /**
   * The image options a JobSpec asks for (its edge checks passed), with the writer's cache size
   * and payload verification.
   *
   * @throws BadInputException naming what cannot be honoured
   */
  static ImageOptions optionsOf(JobSpec spec, long cacheBytes, boolean verifyPayloads) {
    int cs = spec.getClusterSize();
    ImageGeometry geometry = new ImageGeometry(Integer.numberOfTrailingZeros(cs), spec.getVirtualSize());
    ImageGeometry.maxVirtualSize(geometry.clusterBits()); // refuses sizes the format cannot hold
    Codec codec = switch (spec.getCodec()) {
      case WIRE_CODEC_ZSTD -> Codec.ZSTD;
      case WIRE_CODEC_ZLIB -> Codec.ZLIB;
      default -> throw new BadInputException("codec " + spec.getCodec() + " is not supported");
    };
    TargetCache cache = switch (spec.getTargetCache()) {
      case WIRE_TARGET_CACHE_DIRECT -> TargetCache.DIRECT;
      case WIRE_TARGET_CACHE_WRITEBACK -> TargetCache.WRITEBACK;
      default -> TargetCache.AUTO;
    };
    return new ImageOptions(geometry, 1, cache, spec.getWriteCache(), Math.max(cacheBytes, 8L * cs), verifyPayloads,
        codec).withRangeBytes(spec.getRangeSize());
  }

  /** Takes chunks: open, its image open, and no end asked for. */
  boolean isOpen() {
    return state == State.OPEN && image != null && endRequest == null;
  }

  /** Asks for an end; the first request wins. */
  void requestEnd(JobState s, String reason) {
    if (endRequest == null) {
      endRequest = new EndRequest(s, reason);
    }
  }

  Progress progress() {
    Progress.Builder p = Progress.newBuilder().setRejected(rejected).setRequeued(requeued);
    if (pacer != null) {
      p.setTasksIssued(pacer.tasksIssued()).setMaxOutstanding(pacer.maxOutstanding())
          .setRangesWaiting(pacer.waitingCount());
    }
    if (layout == null) {
      return p.build();
    }
    p.setRangesTotal(layout.ranges());
    if (image != null && state == State.OPEN) {
      ImageStats s = image.stats();
      p.setRangesDone(s.rangesComplete()).setGuestBytesDone(s.guestClustersDone() * layout.clusterSize())
          .setHostBytes(s.hostBytes()).setPayloadBytes(s.payloadBytes()).setDuplicates(s.duplicates());
    } else if (state == State.DONE) {
      p.setRangesDone(layout.ranges()).setGuestBytesDone(layout.virtualSize());
    }
    if (spec.getByDigest() && image != null && state == State.OPEN) {
      long read = image.stats().guestClustersDone();
      p.setClustersRead(read).setClustersUnchanged(unchangedReceived)
          .setClustersChanged(Math.max(0, read - unchangedReceived));
    }
    if (changes != null) {
      long cs = layout.clusterSize();
      long total = Math.min(changedClusters * cs, layout.virtualSize());
      long done = state == State.DONE ? total : image != null && state == State.OPEN
          ? Math.max(0, Math.min(total, (image.stats().guestClustersDone() - unchangedMarked) * cs)) : 0;
      p.setChangedBytesTotal(total).setChangedBytesDone(done);
    }
    return p.build();
  }

  String tag(long range) {
    return range < 0 ? "[job=" + id + "]" : "[job=" + id + " range=" + range + "]";
  }
}
