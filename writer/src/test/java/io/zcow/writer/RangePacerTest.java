package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.IssuedRange;
import io.zcow.proto.JobPlan;
import io.zcow.proto.JobSpec;
import io.zcow.proto.RangeLayout;
import io.zcow.proto.RangeRun;
import io.zcow.proto.RangeTask;
import java.util.BitSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The pacer alone, on a fake monotonic clock (milliseconds passed in). */
class RangePacerTest {
  private static final long MIB = 1 << 20;
  private static final RangePacer.Timing TIMING = new RangePacer.Timing(1_000, 5_000, 3);

  private static RangePacer pacer(int ranges, int window, RangeRun... zero) {
    JobSpec spec = JobSpec.newBuilder().setJobId("j").setSourceSize(ranges * MIB).setClusterSize(65536)
        .setRangeSize(MIB).setPlan(JobPlan.newBuilder().setWindow(window).addAllZeroRanges(List.of(zero))).build();
    return new RangePacer(spec, RangeLayout.of(spec), 8, TIMING);
  }

  private static List<Long> ranges(List<RangeTask> tasks) {
    return tasks.stream().map(RangeTask::getRangeIndex).toList();
  }

  @Test
  void issuesAtMostTheWindowSkippingHolesAndCompleteRanges() {
    RangePacer p = pacer(10, 3, RangeRun.newBuilder().setFirst(1).setCount(2).build());
    BitSet complete = new BitSet();
    complete.set(4);
    assertEquals(List.of(0L, 3L, 5L), ranges(p.fill(complete, 0)));
    assertEquals(List.of(), p.fill(complete, 10));
    p.completed(3);
    assertEquals(List.of(6L), ranges(p.fill(complete, 20)));
    assertEquals(3, p.maxOutstanding());
    assertEquals(4, p.tasksIssued());
  }

  @Test
  void incrementalTasksNameOnlyTheChangedClustersOfTheirRange() {
    // 4 ranges of 16 clusters; changed: 3..4 and 14..17 (across ranges 0 and 1), 40; the source
    // grew from 56 clusters (the backing file's size) to 64: 56..63 count as changed.
    JobSpec spec = JobSpec.newBuilder().setJobId("j").setSourceSize(4 * MIB).setClusterSize(65536)
        .setRangeSize(MIB).setPlan(JobPlan.newBuilder().setWindow(8)).build();
    io.zcow.source.DirtyClusters dirty = io.zcow.source.DirtyClusters.builder(4 * MIB, 65536)
        .add(3 * 65536, 2 * 65536).add(14 * 65536, 4 * 65536).add(40 * 65536, 1).build();
    io.zcow.qcow2.ImageGeometry g = io.zcow.qcow2.ImageGeometry.forSource(4 * MIB, 65536);
    io.zcow.qcow2.IncrementalPlan plan = new io.zcow.qcow2.IncrementalPlan(dirty,
        new io.zcow.qcow2.BackingFile("prev.qcow2", 56 * 65536), g);
    RangePacer p = new RangePacer(spec, RangeLayout.of(spec), 8, TIMING).onlyChanged(plan);
    List<RangeTask> tasks = p.fill(new BitSet(), 0);
    assertEquals(List.of("3+2 14+2", "16+2", "40+1", "56+8"), tasks.stream().map(t -> String.join(" ",
        t.getChangedList().stream().map(c -> c.getFirst() + "+" + c.getCount()).toList())).toList());
    p.progressed(2, 0);
    RangePacer.Due d = p.due(2_000, 0).stream().filter(x -> x.range() == 2).findFirst().orElseThrow();
    assertEquals(40, ((RangePacer.Due.Reissue) d).task().getChanged(0).getFirst(), "a re-issue names them too");
  }

  @Test
  void aLongQueueBehindBusyWorkersIsNeverReissued() {
    RangePacer p = pacer(8, 8);
    p.fill(new BitSet(), 0);
    // One worker takes the ranges one after the other, a second apiece with steady progress:
    // the last waits 8 s in the queue, longer than both timeouts, yet is never issued again.
    long groupActive = 0;
    for (int r = 0; r < 8; r++) {
      for (long t = r * 1_000L; t < (r + 1) * 1_000L; t += 100) {
        p.progressed(r, t);
        groupActive = t;
        assertEquals(List.of(), p.due(t, groupActive), "at " + t + " ms");
      }
      p.completed(r);
    }
    assertEquals(8, p.tasksIssued());
  }

  @Test
  void aTaskNoWorkerEverTakesIsReissuedOnceTheGroupIsIdle() {
    RangePacer p = pacer(2, 2);
    p.fill(new BitSet(), 0);
    p.progressed(0, 100);
    p.completed(0);
    assertEquals(List.of(), p.due(5_099, 100), "the group was active 100 ms in");
    List<RangePacer.Due> due = p.due(5_100, 100);
    assertEquals(1, due.size());
    RangePacer.Due.Reissue re = assertInstanceOf(RangePacer.Due.Reissue.class, due.get(0));
    assertEquals(1, re.task().getRangeIndex());
    assertEquals(1, re.task().getAttempt());
    assertEquals(MIB, re.task().getOffset());
    assertTrue(re.why().startsWith("no worker started it"), re.why());
  }

  @Test
  void aStartedRangeWithoutProgressIsReissuedAndFailsAfterTheAttemptLimit() {
    RangePacer p = pacer(1, 1);
    p.fill(new BitSet(), 0);
    long t = 0;
    for (int attempt = 1; attempt <= 3; attempt++) {
      p.started(0, t);
      assertEquals(List.of(), p.due(t + 999, t + 999 - 10_000));
      // Other ranges (of this or another job) progressed meanwhile: the group was not silent.
      RangePacer.Due d = p.due(t + 1_000, t + 500).get(0);
      assertEquals(attempt, assertInstanceOf(RangePacer.Due.Reissue.class, d).task().getAttempt());
      t += 1_000;
    }
    p.started(0, t);
    RangePacer.Due last = p.due(t + 1_000, t + 500).get(0);
    assertEquals(3, assertInstanceOf(RangePacer.Due.Exhausted.class, last).attempts());
  }

  @Test
  void reissuesWhileTheWholeGroupWasSilentAreNotCountedUpToTheirOwnLimit() {
    RangePacer p = new RangePacer(spec(1, 1), RangeLayout.of(spec(1, 1)), 8, new RangePacer.Timing(1_000, 5_000, 2, 3));
    p.fill(new BitSet(), 0);
    long t = 0;
    // An outage: the range started, then nothing from any worker (group last active at its start).
    for (int attempt = 1; attempt <= 3; attempt++) {
      p.started(0, t);
      RangePacer.Due.Reissue re = assertInstanceOf(RangePacer.Due.Reissue.class, p.due(t + 1_000, t).get(0));
      assertEquals(attempt, re.task().getAttempt(), "the task's attempt number still grows");
      assertTrue(re.why().contains("not counted: " + attempt + " of 3"), re.why());
      t += 1_000;
    }
    // Free re-issues are used up: silent re-issues count now, two of them, then the job fails.
    for (int attempt = 4; attempt <= 5; attempt++) {
      p.started(0, t);
      RangePacer.Due.Reissue re = assertInstanceOf(RangePacer.Due.Reissue.class, p.due(t + 1_000, t).get(0));
      assertEquals(attempt, re.task().getAttempt());
      t += 1_000;
    }
    p.started(0, t);
    assertEquals(2, assertInstanceOf(RangePacer.Due.Exhausted.class, p.due(t + 1_000, t).get(0)).attempts());
  }

  @Test
  void anOutageDoesNotUseUpTheAttemptsACountedFailureLeft() {
    RangePacer p = new RangePacer(spec(1, 1), RangeLayout.of(spec(1, 1)), 8, new RangePacer.Timing(1_000, 5_000, 1, 5));
    p.fill(new BitSet(), 0);
    p.started(0, 0);
    assertInstanceOf(RangePacer.Due.Reissue.class, p.due(1_000, 500).get(0), "counted: the group was active at 500 ms");
    p.started(0, 1_000);
    // Three outages in a row: the range would have failed on the first without free re-issues.
    for (long t = 1_000; t < 4_000; t += 1_000) {
      assertInstanceOf(RangePacer.Due.Reissue.class, p.due(t + 1_000, t).get(0), "at " + t);
      p.started(0, t + 1_000);
    }
    assertEquals(List.of(IssuedRange.newBuilder().setRangeIndex(0).setAttempt(4).setFreeRequeues(3).build()), p.issued(),
        "a checkpoint keeps the free re-issues apart");
    assertInstanceOf(RangePacer.Due.Exhausted.class, p.due(5_000, 4_500).get(0), "a second counted failure ends it");
  }

  @Test
  void freeReissuesSurviveACheckpointAndAnUnstartedRangeIsReissuedFree() {
    RangePacer p = new RangePacer(spec(2, 2), RangeLayout.of(spec(2, 2)), 8, new RangePacer.Timing(1_000, 5_000, 2, 2));
    p.restore(List.of(IssuedRange.newBuilder().setRangeIndex(1).setAttempt(3).setFreeRequeues(2).build()), new BitSet(), 0);
    assertEquals(List.of(0L), ranges(p.fill(new BitSet(), 0)));
    assertEquals(2, p.waitingCount(), "two ranges issued, none started");
    p.started(1, 0);
    assertEquals(1, p.waitingCount());
    // Range 0 was never started and the group has been idle for the start timeout: free.
    List<RangePacer.Due> due = p.due(5_000, 0);
    assertEquals(2, due.size());
    RangePacer.Due.Reissue unstarted = assertInstanceOf(RangePacer.Due.Reissue.class, due.get(1));
    assertEquals(0, unstarted.range());
    assertTrue(unstarted.why().contains("not counted"), unstarted.why());
    // Range 1 used its free re-issues and one counted before the checkpoint: this one counts, and is its last.
    RangePacer.Due.Reissue counted = assertInstanceOf(RangePacer.Due.Reissue.class, due.get(0));
    assertEquals(1, counted.range());
    assertTrue(!counted.why().contains("not counted"), counted.why());
    assertEquals(4, counted.task().getAttempt());
    p.started(1, 5_000);
    assertInstanceOf(RangePacer.Due.Exhausted.class, p.due(6_000, 5_000).get(0));
  }

  private static JobSpec spec(int ranges, int window) {
    return JobSpec.newBuilder().setJobId("j").setSourceSize(ranges * MIB).setClusterSize(65536).setRangeSize(MIB)
        .setPlan(JobPlan.newBuilder().setWindow(window)).build();
  }

  @Test
  void badDataIsAnsweredOncePerRangeTimeout() {
    RangePacer p = pacer(2, 2);
    p.fill(new BitSet(), 0);
    assertEquals(1, p.badData(1, 10).size());
    assertEquals(List.of(), p.badData(1, 500));
    assertEquals(2, ((RangePacer.Due.Reissue) p.badData(1, 1_010).get(0)).task().getAttempt());
  }

  @Test
  void restoredRangesKeepTheirAttemptsAndAreNotIssuedAgain() {
    RangePacer p = pacer(4, 2);
    BitSet complete = new BitSet();
    complete.set(0);
    p.restore(List.of(IssuedRange.newBuilder().setRangeIndex(1).setAttempt(2).build(),
        IssuedRange.newBuilder().setRangeIndex(0).setAttempt(1).build()), complete, 0);
    assertEquals(List.of(2L), ranges(p.fill(complete, 0)), "range 1 is outstanding, range 0 complete");
    assertEquals(List.of(IssuedRange.newBuilder().setRangeIndex(1).setAttempt(2).build(),
        IssuedRange.newBuilder().setRangeIndex(2).setAttempt(0).build()), p.issued());
    p.started(1, 0);
    assertEquals(3, ((RangePacer.Due.Reissue) p.due(1_000, 0).get(0)).task().getAttempt());
  }

  @Test
  void rangesWhoseChunksWereLostAreAllIssuedAgainAtOnceWithoutCountingAgainstTheirAttempts() {
    RangePacer p = pacer(6, 8);
    BitSet complete = new BitSet();
    complete.set(1);
    p.restore(List.of(issued(0, 1), issued(2, 0), issued(3, 3)), complete, 0);
    List<RangePacer.Due> due = p.reissueAll(10, "chunks lost");
    assertEquals(3, due.size(), due.toString());
    for (RangePacer.Due d : due) {
      RangePacer.Due.Reissue re = assertInstanceOf(RangePacer.Due.Reissue.class, d);
      assertTrue(re.why().startsWith("chunks lost (not counted"), re.why());
    }
    assertEquals(List.of(0L, 2L, 3L), due.stream().map(RangePacer.Due::range).toList());
    assertEquals(List.of(2, 1, 4), due.stream().map(d -> ((RangePacer.Due.Reissue) d).task().getAttempt()).toList());
    // Range 3 had used its 3 counted attempts: a free re-issue does not exhaust it.
    assertEquals(List.of(), p.due(20, 20), "nothing is due again at once");
  }

  private static IssuedRange issued(long range, int attempt) {
    return IssuedRange.newBuilder().setRangeIndex(range).setAttempt(attempt).build();
  }

  @Test
  void aRangeOutOfAttemptsCarriesTheLastWorkersReasonForReleasingIt() {
    RangePacer p = pacer(2, 2);
    p.fill(new BitSet(), 0);
    p.released(0, "worker@a cannot do it: not in its --source-allow", -1, 0);
    p.released(0, "worker@b could not finish it: NBD export 'disk' at 10.0.0.1:10809: the server closed the connection",
        -1, 0);
    p.released(7, "a range that is not outstanding: ignored", 0, 0);
    long t = 0;
    for (int attempt = 1; attempt <= 3; attempt++) {
      p.started(0, t);
      assertInstanceOf(RangePacer.Due.Reissue.class, p.due(t + 1_000, t + 500).get(0));
      t += 1_000;
    }
    p.started(0, t);
    p.started(1, t);
    List<RangePacer.Due> due = p.due(t + 1_000, t + 500);
    RangePacer.Due.Exhausted ex = assertInstanceOf(RangePacer.Due.Exhausted.class, due.get(0));
    assertEquals("worker@b could not finish it: NBD export 'disk' at 10.0.0.1:10809: the server closed the connection",
        ex.lastRelease(), "the last report wins, and survives re-issues");
    assertEquals(1, assertInstanceOf(RangePacer.Due.Reissue.class, due.get(1)).range(), "range 1 has attempts left");
    for (int attempt = 2; attempt <= 3; attempt++) {
      t += 1_000;
      p.started(1, t);
      assertInstanceOf(RangePacer.Due.Reissue.class, p.due(t + 1_000, t + 500).get(1));
    }
    t += 1_000;
    p.started(1, t);
    RangePacer.Due.Exhausted quiet = assertInstanceOf(RangePacer.Due.Exhausted.class, p.due(t + 1_000, t + 500).get(1));
    assertEquals("", quiet.lastRelease(), "no worker said anything about range 1");
  }

  @Test
  void aFailedAttemptIsIssuedAgainAfterAGrowingPauseCountedUntilTheRangeIsExhausted() {
    RangePacer p = new RangePacer(spec(2, 2), RangeLayout.of(spec(2, 2)), 8, new RangePacer.Timing(60_000, 120_000, 3));
    p.fill(new BitSet(), 0);
    String refused = "worker@a could not finish it: NBD export 'disk' at 10.0.0.1:10809: connection refused";
    long t = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
      assertEquals(List.of(), p.released(0, "worker@c cannot do it: not allowed", -1, t), "untried: not counted");
      assertEquals(List.of(), p.released(0, refused, attempt, t), "issued again after a pause, not at once");
      assertEquals(List.of(), p.released(0, refused, attempt, t), "a second report of the same attempt changes nothing");
      long pause = 1000L << attempt;
      assertEquals(List.of(), p.due(t + pause - 1, t), "still pausing");
      RangePacer.Due.Reissue re = assertInstanceOf(RangePacer.Due.Reissue.class, p.due(t + pause, t).get(0));
      assertEquals(attempt + 1, re.task().getAttempt(), "issued again " + pause + " ms after the failure");
      t += pause;
    }
    RangePacer.Due.Exhausted ex = assertInstanceOf(RangePacer.Due.Exhausted.class, p.released(0, refused, 3, t).get(0),
        "no counted attempt left: the job fails at once");
    assertEquals(0, ex.range());
    assertEquals(3, ex.attempts());
    assertEquals(refused, ex.lastRelease());
    assertEquals(List.of(), p.released(1, refused, 1, t), "a report of an attempt range 1 never had changes nothing");
    assertEquals(1_000, pacer(1, 1).retryPauseMs(5), "never longer than the range timeout (1 s here)");
  }
}
