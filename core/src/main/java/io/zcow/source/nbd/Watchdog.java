package io.zcow.source.nbd;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Runs an action when a deadline passes unless disarmed first: it closes a connection whose
 * handshake stalls, since blocking reads on a channel (TCP or Unix) have no timeout of their own.
 * One daemon thread serves every NBD connection of the JVM; the actions are short.
 */
final class Watchdog implements AutoCloseable {
  private static final ScheduledExecutorService TIMER = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "zcow-nbd-watchdog");
    t.setDaemon(true);
    return t;
  });

  private final ScheduledFuture<?> future;
  private final AtomicBoolean fired = new AtomicBoolean();

  private Watchdog(Duration after, Runnable action) {
    this.future = TIMER.schedule(() -> {
      fired.set(true);
      action.run();
    }, after.toNanos(), TimeUnit.NANOSECONDS);
  }

  /** Runs {@code action} once after {@code delay}, on the watchdog's thread. */
  static void later(Duration delay, Runnable action) {
    TIMER.schedule(action, delay.toNanos(), TimeUnit.NANOSECONDS);
  }

  static Watchdog arm(Duration after, Runnable action) {
    return new Watchdog(after, action);
  }

  /** True once the action has run (the deadline passed). */
  boolean fired() {
    return fired.get();
  }

  @Override
  public void close() {
    future.cancel(false);
  }
}
