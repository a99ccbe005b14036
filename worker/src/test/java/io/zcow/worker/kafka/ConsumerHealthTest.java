package io.zcow.worker.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.worker.kafka.ConsumerHealth.Trigger;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The health verdict alone, on a fake clock (milliseconds). */
class ConsumerHealthTest {
  private static final long BOUND = 10_000;
  private final AtomicLong now = new AtomicLong(1_000_000);
  private final AtomicBoolean waiting = new AtomicBoolean();
  private final ConsumerHealth health = new ConsumerHealth(now::get, BOUND, waiting::get);

  private Optional<Trigger> trigger() {
    return health.check().map(ConsumerHealth.Verdict::trigger);
  }

  @Test
  void aFailedCommitMakesItUnhealthyUntilANewConsumerIsMade() {
    assertEquals(Optional.empty(), trigger());
    health.ackFailed("commit timed out");
    assertEquals(Optional.of(Trigger.ACK_FAILED), trigger());
    health.lockLost("a later cause");
    assertEquals("commit timed out", health.verdict().orElseThrow().detail(), "the first cause is kept");
    health.reset();
    assertEquals(Optional.empty(), trigger());
  }

  @Test
  void aLostLockOrAFailedPollMakesItUnhealthy() {
    health.lockLost("InvalidRecordStateException");
    assertEquals(Optional.of(Trigger.LOCK_LOST), trigger());
    health.reset();
    health.pollFailed("boom");
    assertEquals(Optional.of(Trigger.POLL_FAILED), trigger());
  }

  @Test
  void idleWhileWorkWaitsForTheBoundIsUnhealthy() {
    waiting.set(true);
    assertEquals(Optional.empty(), trigger());
    now.addAndGet(BOUND - 1);
    assertEquals(Optional.empty(), trigger(), "one millisecond short of the bound");
    now.addAndGet(1);
    assertEquals(Optional.of(Trigger.IDLE_WHILE_WORK_WAITS), trigger());
  }

  @Test
  void idleWhileOtherWorkersHoldEveryTaskStaysHealthy() {
    waiting.set(false); // every range issued has been started by some worker
    for (int i = 0; i < 100; i++) {
      now.addAndGet(BOUND);
      assertEquals(Optional.empty(), trigger(), "after " + (i + 1) * BOUND + " ms idle");
    }
  }

  @Test
  void workMustWaitWithoutABreakForTheWholeBound() {
    now.addAndGet(5 * BOUND); // long idle with nothing waiting
    waiting.set(true);
    assertEquals(Optional.empty(), trigger(), "idle for long, but work only just appeared");
    now.addAndGet(BOUND / 2);
    waiting.set(false);
    assertEquals(Optional.empty(), trigger(), "every range got started: the count starts over");
    waiting.set(true);
    now.addAndGet(BOUND / 2);
    assertEquals(Optional.empty(), trigger());
    now.addAndGet(BOUND / 2);
    assertEquals(Optional.empty(), trigger(), "waiting again for only half the bound");
    now.addAndGet(BOUND / 2);
    assertEquals(Optional.of(Trigger.IDLE_WHILE_WORK_WAITS), trigger());
  }

  @Test
  void aTaskOrAnEndedRangeRestartsTheIdleTime() {
    waiting.set(true);
    trigger();
    now.addAndGet(BOUND - 1);
    health.active(); // the consumer gave a task
    now.addAndGet(BOUND - 1);
    assertEquals(Optional.empty(), trigger());
    now.addAndGet(1);
    Optional<ConsumerHealth.Verdict> v = health.check();
    assertEquals(Trigger.IDLE_WHILE_WORK_WAITS, v.orElseThrow().trigger());
    assertTrue(v.get().detail().startsWith("no task for " + BOUND + " ms"), v.get().detail());
  }

  @Test
  void aNewConsumerGetsTheWholeBoundAgain() {
    waiting.set(true);
    trigger();
    now.addAndGet(BOUND);
    assertEquals(Optional.of(Trigger.IDLE_WHILE_WORK_WAITS), trigger());
    health.reset();
    now.addAndGet(BOUND - 1);
    assertEquals(Optional.empty(), trigger());
    now.addAndGet(1);
    assertEquals(Optional.of(Trigger.IDLE_WHILE_WORK_WAITS), trigger());
  }
}
