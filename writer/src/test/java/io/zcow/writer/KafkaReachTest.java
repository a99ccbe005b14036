package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.junit.jupiter.api.Test;

/** {@link KafkaReach} on a fake monotonic clock, its probe answered or not by a MockConsumer. */
class KafkaReachTest {
  private final AtomicLong nanos = new AtomicLong(1_000_000_000L);
  private final AtomicInteger probes = new AtomicInteger();
  private volatile boolean cut;
  private final List<TopicPartition> tps = List.of(new TopicPartition("zcow.chunks.default", 0));
  private final MockConsumer<String, byte[]> consumer = new MockConsumer<>("earliest") {
    @Override
    public synchronized Map<TopicPartition, Long> endOffsets(Collection<TopicPartition> partitions, Duration timeout) {
      probes.incrementAndGet();
      if (cut) {
        advance(timeout.toMillis()); // the call waits for its timeout, as against a silent broker
        throw new TimeoutException("Failed to get offsets by times in " + timeout.toMillis() + "ms");
      }
      return Map.of(tps.get(0), 0L);
    }
  };

  private void advance(long ms) {
    nanos.addAndGet(ms * 1_000_000L);
  }

  private long nowMs() {
    return nanos.get() / 1_000_000L;
  }

  @Test
  void isLostOnlyAfterTheBoundWithoutAnAnswer() {
    KafkaReach reach = new KafkaReach(Duration.ofSeconds(10), nanos::get);
    for (int i = 0; i < 30; i++) { // an answering broker: never lost, however long
      reach.probe(consumer, tps, nowMs(), "t");
      advance(1000);
    }
    assertFalse(reach.lost());
    assertTrue(reach.answering());
    cut = true;
    long cutAt = nowMs();
    while (!reach.lost()) {
      reach.probe(consumer, tps, nowMs(), "t");
      advance(200);
      assertTrue(nowMs() - cutAt < 10_000 + KafkaReach.PROBE_TIMEOUT.toMillis() + KafkaReach.PROBE_INTERVAL.toMillis() + 1000,
          "lost within bound + one probe");
    }
    assertFalse(reach.answering(), "trims wait while the probe fails");
    assertTrue(nowMs() - cutAt >= 9_000, "not lost before the bound (counted from the last answer)");
    cut = false;
    reach.probe(consumer, tps, nowMs() + 5000, "t");
    assertFalse(reach.lost(), "an answer clears it");
    assertTrue(reach.answering());
  }

  @Test
  void probesAtMostOncePerInterval() {
    KafkaReach reach = new KafkaReach(Duration.ofSeconds(10), nanos::get);
    for (int i = 0; i < 50; i++) {
      reach.probe(consumer, tps, nowMs(), "t");
      advance(100);
    }
    assertEquals(5, probes.get(), "5 s of turns every 100 ms probe 5 times");
  }

  @Test
  void aNewLeadershipGetsTheWholeBound() {
    KafkaReach reach = new KafkaReach(Duration.ofSeconds(10), nanos::get);
    advance(60_000); // a standby for a minute: its last contact is old
    assertTrue(reach.lost());
    reach.restart();
    assertFalse(reach.lost());
    advance(10_001);
    assertTrue(reach.lost());
  }

  @Test
  void rejectsANonPositiveBound() {
    assertThrows(IllegalArgumentException.class, () -> new KafkaReach(Duration.ZERO, nanos::get));
  }
}
