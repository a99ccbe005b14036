package io.zcow.worker.kafka;

import java.util.Objects;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;

/**
 * Whether a task loop's share consumer still works, judged only from what the loop observes — so
 * the verdict holds whatever the client version and whatever bug in it wedged the consumer (seen:
 * after a broker outage the completion of a RENEW was lost, and from then on {@code poll} returned
 * nothing while heartbeats kept the member alive).
 *
 * <p>The consumer is unhealthy, for good until {@link #reset()}, once
 * <ul>
 *   <li>a commit of acknowledgements failed, was refused or did not complete in time
 *       ({@link Trigger#ACK_FAILED});
 *   <li>a task's acquisition lock was lost: an acknowledgement refused for the record's state, a
 *       record the consumer no longer lets us acknowledge, a renewed record that did not come back
 *       ({@link Trigger#LOCK_LOST});
 *   <li>{@code poll} threw ({@link Trigger#POLL_FAILED});
 *   <li>the loop has taken no task for longer than the idle bound while, all that time, the jobs
 *       showed work waiting — a running job with ranges issued that no worker has started
 *       ({@link Trigger#IDLE_WHILE_WORK_WAITS}). A worker idle because other workers hold every
 *       task sees no work waiting, and stays as it is.
 * </ul>
 *
 * <p>The loop replaces an unhealthy consumer between ranges only. Times are milliseconds of the
 * loop's clock. Not thread safe: owned by the loop's thread.
 */
final class ConsumerHealth {
  /** What made a consumer unhealthy. */
  enum Trigger {
    ACK_FAILED("ack_failed"),
    LOCK_LOST("lock_lost"),
    POLL_FAILED("poll_failed"),
    IDLE_WHILE_WORK_WAITS("idle");

    private final String tag;

    Trigger(String tag) {
      this.tag = tag;
    }

    /** The metric tag of this trigger. */
    String tag() {
      return tag;
    }
  }

  /** Why the consumer is unhealthy. */
  record Verdict(Trigger trigger, String detail) {
    @Override
    public String toString() {
      return trigger.tag() + ": " + detail;
    }
  }

  private final LongSupplier nowMs;
  private final long idleBoundMs;
  private final BooleanSupplier workWaiting;
  private Verdict verdict; // null while healthy
  private long activeMs; // the consumer last gave a task, or a range last ended, or it was made
  private long waitingSinceMs = -1; // work has been waiting without a break since then; -1: none

  /**
   * @param nowMs the loop's clock
   * @param idleBoundMs how long the loop may take no task while work waits
   * @param workWaiting whether running jobs have ranges no worker has started (asked between ranges)
   */
  ConsumerHealth(LongSupplier nowMs, long idleBoundMs, BooleanSupplier workWaiting) {
    if (idleBoundMs <= 0) {
      throw new IllegalArgumentException("idleBoundMs must be positive: " + idleBoundMs);
    }
    this.nowMs = Objects.requireNonNull(nowMs, "nowMs");
    this.idleBoundMs = idleBoundMs;
    this.workWaiting = Objects.requireNonNull(workWaiting, "workWaiting");
    this.activeMs = nowMs.getAsLong();
  }

  /** A new consumer: healthy, and its idle time starts now (work waiting is the jobs' fact: kept). */
  void reset() {
    verdict = null;
    activeMs = nowMs.getAsLong();
  }

  /** A commit of acknowledgements failed, was refused or timed out. */
  void ackFailed(String why) {
    unhealthy(Trigger.ACK_FAILED, why);
  }

  /** A task's acquisition lock is no longer this consumer's. */
  void lockLost(String why) {
    unhealthy(Trigger.LOCK_LOST, why);
  }

  /** {@code poll} threw. */
  void pollFailed(String why) {
    unhealthy(Trigger.POLL_FAILED, why);
  }

  /** The consumer gave a task, or a range ended: the loop is not idle now. */
  void active() {
    activeMs = nowMs.getAsLong();
  }

  /**
   * The verdict between ranges: looks at the jobs, and finds the consumer unhealthy when it has
   * given no task for the idle bound while work waited all that time.
   */
  Optional<Verdict> check() {
    long now = nowMs.getAsLong();
    if (!workWaiting.getAsBoolean()) {
      waitingSinceMs = -1;
    } else if (waitingSinceMs < 0) {
      waitingSinceMs = now;
    }
    if (verdict == null && waitingSinceMs >= 0) {
      long idleMs = now - Math.max(activeMs, waitingSinceMs);
      if (idleMs >= idleBoundMs) {
        verdict = new Verdict(Trigger.IDLE_WHILE_WORK_WAITS, "no task for " + (now - activeMs)
            + " ms while running jobs had ranges no worker started (for " + (now - waitingSinceMs) + " ms)");
      }
    }
    return Optional.ofNullable(verdict);
  }

  /** The verdict found so far, without looking at the jobs. */
  Optional<Verdict> verdict() {
    return Optional.ofNullable(verdict);
  }

  private void unhealthy(Trigger trigger, String why) {
    if (verdict == null) { // the first cause is the one worth reporting
      verdict = new Verdict(trigger, why);
    }
  }
}
