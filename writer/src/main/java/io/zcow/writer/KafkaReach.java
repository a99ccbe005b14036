package io.zcow.writer;

import java.time.Duration;
import java.util.List;
import java.util.function.LongSupplier;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Whether the leader still reaches Kafka: when it last heard from the brokers (a probe answered, a
 * poll returned records, a term's recovery read the topics), and whether that was longer ago than
 * the bound ({@link WriterConfig#kafkaLossTimeout()}). A leader that cannot consume stalls its
 * group while ZooKeeper keeps it elected; past the bound it gives up leadership so a standby that
 * may reach Kafka takes over ({@link Writer}).
 *
 * <p>Each leadership starts with a fresh bound ({@link #restart()}): a writer newly elected has not
 * yet had a chance to reach Kafka. Thread safe (a volatile timestamp on the monotonic clock).
 */
final class KafkaReach {
  private static final Logger LOG = LoggerFactory.getLogger(KafkaReach.class);
  /** How often a term asks the brokers for the chunks topic's end offsets, and how long it waits. */
  static final Duration PROBE_INTERVAL = Duration.ofSeconds(1);
  static final Duration PROBE_TIMEOUT = Duration.ofSeconds(2);

  private final long boundNanos;
  private final LongSupplier nanoTime;
  private volatile long lastContactNanos;
  /** The term's thread only. */
  private long lastProbeMs = Long.MIN_VALUE / 2;
  private volatile boolean failing;

  KafkaReach(Duration bound, LongSupplier nanoTime) {
    if (bound == null || bound.isNegative() || bound.isZero()) {
      throw new IllegalArgumentException("bound must be positive: " + bound);
    }
    this.boundNanos = bound.toNanos();
    this.nanoTime = nanoTime;
    this.lastContactNanos = nanoTime.getAsLong();
  }

  /** A new leadership: the bound counts from now. */
  void restart() {
    lastContactNanos = nanoTime.getAsLong();
    failing = false;
  }

  /**
   * Once per {@link #PROBE_INTERVAL} (by {@code nowMs}): asks the brokers for the end offsets of
   * {@code partitions} through {@code consumer}, waiting at most {@link #PROBE_TIMEOUT}. An empty
   * poll cannot tell an idle topic from a cut-off broker; this round trip can. The first failure
   * after an answer, and the first answer after failures, are logged under {@code tag}.
   */
  void probe(Consumer<?, ?> consumer, List<TopicPartition> partitions, long nowMs, String tag) {
    if (nowMs - lastProbeMs < PROBE_INTERVAL.toMillis() || partitions.isEmpty()) {
      return;
    }
    lastProbeMs = nowMs;
    try {
      consumer.endOffsets(partitions, PROBE_TIMEOUT);
      heard();
      if (failing) {
        LOG.info("{}: Kafka answers again", tag);
      }
      failing = false;
    } catch (KafkaException e) {
      if (!failing) {
        LOG.warn("{}: Kafka did not answer ({}); giving up leadership if it stays silent for {} ms", tag, e.toString(),
            bound().toMillis());
      }
      failing = true;
    }
  }

  /** False while the last probe went unanswered (calls that would wait for their timeout can wait). */
  boolean answering() {
    return !failing;
  }

  /** The brokers answered. */
  void heard() {
    lastContactNanos = nanoTime.getAsLong();
  }

  /** How long since the brokers last answered (or since {@link #restart()}). */
  Duration silence() {
    return Duration.ofNanos(Math.max(0, nanoTime.getAsLong() - lastContactNanos));
  }

  /** True once the brokers have not answered for longer than the bound. */
  boolean lost() {
    return nanoTime.getAsLong() - lastContactNanos > boundNanos;
  }

  Duration bound() {
    return Duration.ofNanos(boundNanos);
  }
}
