package io.zcow.writer;

import io.zcow.proto.IssuedRange;
import io.zcow.proto.JobSpec;
import io.zcow.proto.RangeLayout;
import io.zcow.proto.RangeRun;
import io.zcow.proto.RangeTask;
import io.zcow.proto.ClusterRun;
import io.zcow.qcow2.IncrementalPlan;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Paces one job: issues the tasks of its plan's data ranges, at most {@code window} outstanding
 * (issued and not complete), and owns every outstanding range's clock and attempt count.
 *
 * <p>A range's clock starts when a worker says it started the range (RangeStarted), and runs
 * again with each accepted cluster; a started range that makes no progress for the range timeout
 * is issued again. A range no worker has started is issued again only once the whole group has
 * been idle for the start timeout — a task waiting behind busy workers is not lost, but one the
 * share group archived at its delivery limit would otherwise never run. A range issued more than
 * the attempt limit allows fails its job.
 *
 * <p>A re-issue made while the whole worker group was silent — no range started and no cluster
 * arrived, in any job, since the range's clock last moved — is an outage's doing, not the range's:
 * it is <em>free</em> and does not count against the attempt limit, up to {@link
 * Timing#maxFreeRequeues()} free re-issues per range, after which re-issues count again (a range
 * no worker can ever take does not loop for ever). A range no worker has started is only issued
 * again once the group has been silent for the start timeout, so that re-issue is always free.
 *
 * <p>A worker that tried to read a range and failed (a read error, an NBD server gone) says so
 * and is done with the task ({@link #released} with the task's attempt): the range is issued again,
 * counted, after a pause that doubles with each counted attempt (1 s, 2 s, 4 s…, at most the range
 * timeout), so a server that restarts has time to come back and one gone for good fails its job in
 * well under a minute with the defaults, not after one range timeout per attempt. A report about an
 * earlier attempt than the range's current one changes nothing; a worker that did not try (a source
 * it may not read) is not counted.
 *
 * <p>Times are milliseconds of a monotonic clock. Not thread safe: the term's thread.
 */
final class RangePacer {
  /**
   * Clock and limits of re-issues.
   *
   * @param maxRequeues re-issues that count (no progress while other ranges progressed, bad data)
   *     before the range fails its job
   * @param maxFreeRequeues re-issues made while the whole group was silent that are not counted
   */
  record Timing(long rangeTimeoutMs, long startTimeoutMs, int maxRequeues, int maxFreeRequeues) {
    Timing {
      if (maxRequeues < 0 || maxFreeRequeues < 0) {
        throw new IllegalArgumentException("maxRequeues and maxFreeRequeues must not be negative: " + maxRequeues
            + ", " + maxFreeRequeues);
      }
    }

    /** As many free re-issues as counted ones. */
    Timing(long rangeTimeoutMs, long startTimeoutMs, int maxRequeues) {
      this(rangeTimeoutMs, startTimeoutMs, maxRequeues, maxRequeues);
    }
  }

  /** What a check found for one range. */
  sealed interface Due {
    String why();

    long range();

    record Reissue(RangeTask task, String why) implements Due {
      public long range() {
        return task.getRangeIndex();
      }
    }

    /**
     * @param lastRelease what the last worker to hand the range back said (an NBD server gone, a
     *     source it may not read), or empty when no worker said anything
     */
    record Exhausted(long range, int attempts, String why, String lastRelease) implements Due {}
  }

  private static final class Outstanding {
    final long range;
    int attempt; // issues so far: the task's attempt number
    int free; // of them, re-issues during a silence of the whole group
    boolean started;
    long sinceMs;
    long lastBadMs = Long.MIN_VALUE;
    String lastRelease = ""; // the last worker's reason for handing the range back
    long retryAtMs = -1; // when its current attempt failed on a worker: when it is issued again

    Outstanding(long range, int attempt, int free, long now) {
      this.range = range;
      this.attempt = attempt;
      this.free = free;
      this.sinceMs = now;
    }

    int counted() {
      return attempt - free;
    }
  }

  private final String jobId;
  private final RangeLayout layout;
  private final BitSet zero = new BitSet();
  private final int window;
  private final Timing timing;
  private final Map<Long, Outstanding> outstanding = new LinkedHashMap<>();
  private IncrementalPlan changes; // null: every range whole
  private java.nio.file.Path previousImage; // by_digest jobs: whose manifest entries each task carries
  private java.util.function.Consumer<String> digestFailure;
  private int cursor;
  private long tasksIssued;
  private int maxOutstanding;

  RangePacer(JobSpec spec, RangeLayout layout, int defaultWindow, Timing timing) {
    this.jobId = spec.getJobId();
    this.layout = layout;
    this.window = spec.getPlan().getWindow() > 0 ? spec.getPlan().getWindow() : defaultWindow;
    this.timing = timing;
    for (RangeRun run : spec.getPlan().getZeroRangesList()) {
      zero.set((int) run.getFirst(), (int) (run.getFirst() + run.getCount()));
    }
  }

  /** Incremental jobs: each task names the changed clusters of its range (null: whole ranges). */
  RangePacer onlyChanged(IncrementalPlan plan) {
    this.changes = plan;
    return this;
  }

  /**
   * By-digest jobs: each task carries its range's entries of {@code previous}'s digest manifest
   * (read when the task is issued, re-issues too: nothing of it is held between tasks). A
   * manifest that cannot be read any more goes to {@code failure} (the job fails with it).
   */
  RangePacer byDigest(java.nio.file.Path previous, java.util.function.Consumer<String> failure) {
    this.previousImage = previous;
    this.digestFailure = failure;
    return this;
  }

  /** A range's task: the whole range, or only its changed clusters. */
  private RangeTask task(long range, int attempt) {
    RangeTask t = layout.task(jobId, range, attempt);
    if (previousImage != null) {
      long first = layout.firstCluster(range);
      try {
        byte[] digests = io.zcow.qcow2.ManifestReader.readSpan(previousImage, first,
            (int) (layout.endCluster(range) - first));
        return t.toBuilder().setPreviousDigests(com.google.protobuf.ByteString.copyFrom(digests)).build();
      } catch (io.zcow.BadInputException | java.io.UncheckedIOException | io.zcow.CorruptException e) {
        digestFailure.accept("the previous image's digest manifest: " + e.getMessage());
        return t;
      }
    }
    if (changes == null) {
      return t;
    }
    RangeTask.Builder b = t.toBuilder();
    for (long[] run : changes.changedIn(layout.firstCluster(range), layout.endCluster(range))) {
      b.addChanged(ClusterRun.newBuilder().setFirst(run[0]).setCount(run[1] - run[0]));
    }
    return b.build();
  }

  /** Ranges the plan says read as zeros: complete without a task. */
  List<RangeRun> zeroRuns() {
    List<RangeRun> runs = new ArrayList<>();
    for (int r = zero.nextSetBit(0); r >= 0; ) {
      int end = zero.nextClearBit(r);
      runs.add(RangeRun.newBuilder().setFirst(r).setCount(end - r).build());
      r = end < layout.ranges() ? zero.nextSetBit(end) : -1;
    }
    return runs;
  }

  /** Ranges issued before a checkpoint of this same run of the job: their clocks start now, unstarted. */
  void restore(List<IssuedRange> issued, BitSet complete, long now) {
    for (IssuedRange i : issued) {
      long r = i.getRangeIndex();
      if (layout.contains(r) && !complete.get((int) r)) {
        int free = Math.min(i.getFreeRequeues(), i.getAttempt());
        outstanding.put(r, new Outstanding(r, i.getAttempt(), free, now));
      }
    }
  }

  /** What a checkpoint records of the outstanding ranges. */
  List<IssuedRange> issued() {
    List<IssuedRange> out = new ArrayList<>(outstanding.size());
    for (Outstanding o : outstanding.values()) {
      out.add(IssuedRange.newBuilder().setRangeIndex(o.range).setAttempt(o.attempt).setFreeRequeues(o.free).build());
    }
    return out;
  }

  int window() {
    return window;
  }

  int outstandingCount() {
    return outstanding.size();
  }

  /** Outstanding ranges no worker has started yet: work waiting for a worker. */
  int waitingCount() {
    int n = 0;
    for (Outstanding o : outstanding.values()) {
      if (!o.started) {
        n++;
      }
    }
    return n;
  }

  /** Tasks issued so far (re-issues included). */
  long tasksIssued() {
    return tasksIssued;
  }

  /** The most ranges outstanding at once so far. */
  int maxOutstanding() {
    return maxOutstanding;
  }

  /** The next tasks to issue so that at most {@code window} ranges are outstanding. */
  List<RangeTask> fill(BitSet complete, long now) {
    List<RangeTask> tasks = new ArrayList<>();
    while (outstanding.size() < window && cursor < layout.ranges()) {
      int r = cursor++;
      if (zero.get(r) || complete.get(r) || outstanding.containsKey((long) r)) {
        continue;
      }
      outstanding.put((long) r, new Outstanding(r, 0, 0, now));
      tasks.add(task(r, 0));
    }
    tasksIssued += tasks.size();
    maxOutstanding = Math.max(maxOutstanding, outstanding.size());
    return tasks;
  }

  /** A worker took the range: its clock starts. */
  void started(long range, long now) {
    Outstanding o = outstanding.get(range);
    if (o != null) {
      o.started = true;
      o.sinceMs = now;
    }
  }

  /** A cluster of the range was accepted. */
  void progressed(long range, long now) {
    started(range, now);
  }

  void completed(long range) {
    outstanding.remove(range);
  }

  /**
   * A worker handed the range back, saying why; the last such reason is what a range that runs
   * out of attempts fails its job with. A task handed back untried goes to another worker through
   * the share group: the range's clock is not touched. A failed attempt — the range's current one
   * — is issued again after {@link #retryPauseMs}, counted, or exhausts the range at once when no
   * counted attempt is left. Ignored for a range that is not outstanding.
   *
   * @param failedAttempt the attempt number of the task a worker tried and failed, or -1
   */
  List<Due> released(long range, String reason, int failedAttempt, long now) {
    Outstanding o = outstanding.get(range);
    if (o == null) {
      return List.of();
    }
    o.lastRelease = reason;
    if (failedAttempt != o.attempt || o.retryAtMs >= 0) {
      return List.of(); // untried, or an attempt already answered
    }
    if (o.counted() >= timing.maxRequeues()) {
      return List.of(reissue(o, now, failedWhy(o), false));
    }
    o.retryAtMs = now + retryPauseMs(o.counted());
    return List.of();
  }

  /** The pause before a failed attempt's range is issued again: 1 s doubled per counted attempt, at most the range timeout. */
  long retryPauseMs(int counted) {
    return Math.min(timing.rangeTimeoutMs(), 1000L << Math.min(counted, 20));
  }

  private static String failedWhy(Outstanding o) {
    return "attempt " + o.attempt + " failed on a worker";
  }

  /**
   * Ranges whose clock ran out, issued again (or exhausted).
   *
   * @param groupActiveMs when the writer group last saw a range start or a cluster arrive
   */
  List<Due> due(long now, long groupActiveMs) {
    List<Due> due = new ArrayList<>();
    for (Outstanding o : List.copyOf(outstanding.values())) {
      if (o.retryAtMs >= 0) {
        if (now >= o.retryAtMs) {
          due.add(reissue(o, now, failedWhy(o) + " (issued again after " + retryPauseMs(o.counted()) + " ms)", false));
        }
      } else if (o.started && now - o.sinceMs >= timing.rangeTimeoutMs()) {
        // Nothing from any worker since this range last moved: the group was silent (an outage).
        boolean silent = groupActiveMs <= o.sinceMs;
        due.add(reissue(o, now, "no progress for " + timing.rangeTimeoutMs() + " ms"
            + (silent ? " while the whole group was silent" : ""), silent));
      } else if (!o.started && now - Math.max(o.sinceMs, groupActiveMs) >= timing.startTimeoutMs()) {
        due.add(reissue(o, now, "no worker started it while the group was idle for " + timing.startTimeoutMs() + " ms",
            true));
      }
    }
    return due;
  }

  /**
   * Bad data arrived for the range: issue it again, at most once per range timeout (the new
   * attempt needs time). Empty when it is not outstanding or was just issued again.
   */
  List<Due> badData(long range, long now) {
    Outstanding o = outstanding.get(range);
    if (o == null) {
      o = new Outstanding(range, 0, 0, now); // data of a range this term did not issue (an earlier term did)
      outstanding.put(range, o);
    }
    if (o.lastBadMs != Long.MIN_VALUE && now - o.lastBadMs < timing.rangeTimeoutMs()) {
      return List.of();
    }
    o.lastBadMs = now;
    return List.of(reissue(o, now, "bad data received", false));
  }

  /**
   * Every outstanding range issued again now, as a free re-issue (within the bound): its chunks
   * were lost with the broker's records, which is not the range's doing.
   */
  List<Due> reissueAll(long now, String why) {
    List<Due> due = new ArrayList<>();
    for (Outstanding o : List.copyOf(outstanding.values())) {
      due.add(reissue(o, now, why, true));
    }
    return due;
  }

  /** @param silent whether the whole group was silent while the range waited: free, within the bound */
  private Due reissue(Outstanding o, long now, String why, boolean silent) {
    boolean free = silent && o.free < timing.maxFreeRequeues();
    if (!free && o.counted() >= timing.maxRequeues()) {
      return new Due.Exhausted(o.range, o.counted(), why, o.lastRelease);
    }
    if (free) {
      o.free++;
      why = why + " (not counted: " + o.free + " of " + timing.maxFreeRequeues() + " free re-issues)";
    }
    o.attempt++;
    tasksIssued++;
    o.retryAtMs = -1;
    o.started = false;
    o.sinceMs = now;
    return new Due.Reissue(task(o.range, o.attempt), why);
  }
}
