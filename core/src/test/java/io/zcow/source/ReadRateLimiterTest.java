package io.zcow.source;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ReadRateLimiterTest {
  @Test
  void eachReadWaitsForTheTimeItsBytesAreWorth() {
    AtomicLong now = new AtomicLong(1_000_000_000L);
    ReadRateLimiter l = new ReadRateLimiter(1e6, now::get); // 1 MB/s: a byte is worth 1 us
    assertEquals(4_000_000_000L, l.reserve(4_000_000));
    assertEquals(5_000_000_000L, l.reserve(1_000_000), "a second reader queues behind the first");
    now.addAndGet(10_000_000_000L); // idle time is not saved up as a burst
    assertEquals(1_000_000L, l.reserve(1_000));
  }

  @Test
  void refusesNonsenseRates() {
    assertThrows(IllegalArgumentException.class, () -> new ReadRateLimiter(0));
    assertThrows(IllegalArgumentException.class, () -> new ReadRateLimiter(Double.NaN));
    assertThrows(IllegalArgumentException.class, () -> new ReadRateLimiter(Double.POSITIVE_INFINITY));
  }
}
