package io.zcow.worker.kafka;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.Progress;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** What the writers' progress reports say about work waiting, on a fake clock (milliseconds). */
class WaitingRangesTest {
  private final WaitingRanges waiting = new WaitingRanges();

  private static JobEvent progress(String job, long rangesWaiting) {
    return JobEvent.newBuilder().setJobId(job).setKind(EventKind.EVENT_KIND_PROGRESS)
        .setProgress(Progress.newBuilder().setRangesTotal(10).setRangesWaiting(rangesWaiting)).build();
  }

  @Test
  void aFreshReportOfARunningJobWithRangesNotStartedIsWorkWaiting() {
    waiting.apply(progress("a", 3), 0);
    assertTrue(waiting.any(WaitingRanges.FRESH_MS, Set.of("a")::contains));
    assertFalse(waiting.any(WaitingRanges.FRESH_MS + 1, Set.of("a")::contains), "a silent writer's report goes stale");
    assertFalse(waiting.any(0, Set.of("b")::contains), "the job is not running");
  }

  @Test
  void everyRangeStartedIsNoWorkWaitingAndTheLatestReportWins() {
    waiting.apply(progress("a", 3), 0);
    waiting.apply(progress("a", 0), 100); // other workers took every range
    assertFalse(waiting.any(200, id -> true));
    waiting.apply(JobEvent.newBuilder().setJobId("a").setKind(EventKind.EVENT_KIND_RANGE_DONE).build(), 300);
    assertFalse(waiting.any(300, id -> true), "events other than progress reports change nothing");
    waiting.apply(progress("b", 1), 400);
    assertTrue(waiting.any(400, id -> true));
  }
}
