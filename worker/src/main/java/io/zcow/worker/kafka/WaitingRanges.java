package io.zcow.worker.kafka;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;

/**
 * Per job, the writer's latest word on ranges issued that no worker has started yet ({@code
 * Progress.ranges_waiting} of its PROGRESS events, sent every couple of seconds while the job is
 * open). A report counts for {@link #FRESH_MS} only: when the writer falls silent (an outage, a
 * finished job) the work it reported no longer counts as waiting.
 *
 * <p>Times are milliseconds of the caller's monotonic clock. Thread safe: one thread applies
 * events, any thread asks.
 */
final class WaitingRanges {
  /** How long a report holds: five of the writer's default 2 s progress intervals. */
  static final long FRESH_MS = 10_000;

  private record Report(long waiting, long atMs) {}

  private final Map<String, Report> latest = new ConcurrentHashMap<>();

  /** Takes what an event says; events other than progress reports are ignored. */
  void apply(JobEvent e, long nowMs) {
    if (e.getKind() == EventKind.EVENT_KIND_PROGRESS && e.hasProgress()) {
      latest.put(e.getJobId(), new Report(e.getProgress().getRangesWaiting(), nowMs));
    }
    latest.values().removeIf(r -> nowMs - r.atMs() > 10 * FRESH_MS); // jobs long gone
  }

  /**
   * Whether a job that {@code running} accepts has ranges waiting, by a report at most
   * {@link #FRESH_MS} old.
   */
  boolean any(long nowMs, Predicate<String> running) {
    for (Map.Entry<String, Report> e : latest.entrySet()) {
      Report r = e.getValue();
      if (r.waiting() > 0 && nowMs - r.atMs() <= FRESH_MS && running.test(e.getKey())) {
        return true;
      }
    }
    return false;
  }
}
