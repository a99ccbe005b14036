package io.zcow.source;

import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Keeps the reads of a whole worker (all its threads) under a byte rate, so a backup does not
 * starve the production load on the source's disk. Each read waits for its turn: bytes are
 * reserved in arrival order, and no burst is saved up while idle.
 *
 * <p>Thread safe. Waiting is a sleep, not a lock: other threads reserve meanwhile.
 */
public final class ReadRateLimiter {
  private final double nanosPerByte;
  private final LongSupplier nanoTime;
  private long nextFree; // guarded by this: when the bytes reserved so far will have been "read"

  /** @param bytesPerSecond the ceiling, positive */
  public ReadRateLimiter(double bytesPerSecond) {
    this(bytesPerSecond, System::nanoTime);
  }

  ReadRateLimiter(double bytesPerSecond, LongSupplier nanoTime) {
    if (!(bytesPerSecond > 0) || Double.isInfinite(bytesPerSecond)) {
      throw new IllegalArgumentException("bytesPerSecond must be a positive number: " + bytesPerSecond);
    }
    this.nanosPerByte = 1e9 / bytesPerSecond;
    this.nanoTime = nanoTime;
    this.nextFree = nanoTime.getAsLong();
  }

  /**
   * Reserves {@code bytes} and returns how long the caller must wait before reading them (ns):
   * a read is paid for before it happens, so even the first read of a large block takes the time
   * its bytes are worth.
   */
  synchronized long reserve(long bytes) {
    long now = nanoTime.getAsLong();
    if (nextFree - now < 0) {
      nextFree = now;
    }
    nextFree += (long) Math.ceil(bytes * nanosPerByte);
    return nextFree - now;
  }

  /** Waits until {@code bytes} may be read. Restores the interrupt flag if interrupted. */
  public void acquire(long bytes) {
    long wait = reserve(bytes);
    if (wait > 0) {
      try {
        TimeUnit.NANOSECONDS.sleep(wait);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
