package io.zcow.worker.kafka;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Supplier;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ShareConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.errors.InvalidRecordStateException;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The share consumer of one task loop, and the only code that touches it: polls, acknowledges
 * with a commit bounded by {@link #COMMIT_TIMEOUT} (an acknowledgement never holds the loop for
 * long), reports what it sees to the loop's {@link ConsumerHealth}, and — when the loop asks,
 * between ranges — closes an unhealthy consumer and makes a new one from the factory.
 *
 * <p>Not thread safe: owned by the loop's thread, like the consumer.
 */
final class TaskConsumer {
  private static final Logger LOG = LoggerFactory.getLogger(TaskConsumer.class);
  /** How long a commit of acknowledgements may take before the consumer counts as unhealthy. */
  static final Duration COMMIT_TIMEOUT = Duration.ofSeconds(5);
  /** How long closing a consumer may take (it releases what it still holds). */
  static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(5);

  private final Supplier<ShareConsumer<String, byte[]>> factory;
  private final String topic;
  private final ConsumerHealth health;
  private final WorkerMetrics metrics;
  private final String name;
  private ShareConsumer<String, byte[]> consumer; // null until subscribe()
  private int generation;

  /**
   * @param factory makes a new consumer, configured for explicit acknowledgement
   * @param name names the loop in log lines ("worker@host thread 0")
   */
  TaskConsumer(Supplier<ShareConsumer<String, byte[]>> factory, String topic, ConsumerHealth health,
      WorkerMetrics metrics, String name) {
    this.factory = Objects.requireNonNull(factory, "factory");
    this.topic = Objects.requireNonNull(topic, "topic");
    this.health = Objects.requireNonNull(health, "health");
    this.metrics = Objects.requireNonNull(metrics, "metrics");
    this.name = name;
  }

  boolean subscribed() {
    return consumer != null;
  }

  /** Makes the first consumer and subscribes it to the tasks topic. */
  void subscribe() {
    ShareConsumer<String, byte[]> c = factory.get();
    try {
      c.subscribe(List.of(topic));
    } catch (RuntimeException e) {
      c.close(CLOSE_TIMEOUT);
      throw e;
    }
    consumer = c;
    generation++;
    health.reset();
  }

  /** The consumers made so far (1 after {@link #subscribe()}). */
  int generation() {
    return generation;
  }

  /** One poll; empty (and the consumer unhealthy) when it throws. */
  List<ConsumerRecord<String, byte[]>> poll(Duration timeout) {
    List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
    try {
      for (ConsumerRecord<String, byte[]> r : consumer.poll(timeout)) {
        out.add(r);
      }
    } catch (WakeupException e) {
      return out;
    } catch (KafkaException | IllegalStateException e) {
      LOG.warn("{}: poll failed: {}", name, e.toString());
      health.pollFailed("poll failed: " + e);
    }
    if (!out.isEmpty()) {
      health.active();
    }
    return out;
  }

  /** Acknowledges one record and commits; false when that did not succeed in time. */
  boolean acknowledge(ConsumerRecord<String, byte[]> r, AcknowledgeType type, String tag) {
    return acknowledgeAll(List.of(r), type, tag + " " + type);
  }

  /**
   * Acknowledges the records with one type and commits once; false when any acknowledgement was
   * refused or the commit did not succeed in time (the consumer is then unhealthy).
   */
  boolean acknowledgeAll(Collection<ConsumerRecord<String, byte[]>> records, AcknowledgeType type, String what) {
    for (ConsumerRecord<String, byte[]> r : records) {
      try {
        consumer.acknowledge(r, type);
      } catch (IllegalStateException e) {
        // The consumer no longer lets us acknowledge it: its lock is not ours any more.
        LOG.warn("{}: cannot be acknowledged ({}): {}", what, type, e.getMessage());
        health.lockLost(what + ": " + e.getMessage());
        return false;
      }
    }
    return commit(what);
  }

  private boolean commit(String what) {
    Map<TopicIdPartition, Optional<KafkaException>> result;
    try {
      result = consumer.commitSync(COMMIT_TIMEOUT);
    } catch (KafkaException | IllegalStateException e) {
      LOG.warn("{}: commit failed: {}", what, e.toString());
      health.ackFailed(what + ": commit failed: " + e);
      return false;
    }
    boolean ok = true;
    for (Map.Entry<TopicIdPartition, Optional<KafkaException>> e : result.entrySet()) {
      if (e.getValue().isPresent()) {
        ok = false;
        KafkaException refusal = e.getValue().get();
        LOG.warn("{}: refused by the broker for {}: {}", what, e.getKey(), refusal.toString());
        if (refusal instanceof InvalidRecordStateException) {
          health.lockLost(what + ": " + refusal);
        } else {
          health.ackFailed(what + ": refused: " + refusal);
        }
      }
    }
    return ok;
  }

  /** A range ended (whatever its outcome): the loop was busy, not idle, until now. */
  void rangeEnded() {
    health.active();
  }

  /** A task's lock is no longer this consumer's, as the loop found out by itself. */
  void lockLost(String why) {
    health.lockLost(why);
  }

  /** The lock duration the broker reported, when it has. */
  Optional<Integer> acquisitionLockTimeoutMs() {
    return consumer.acquisitionLockTimeoutMs();
  }

  /**
   * Closes the consumer and makes a new one when its health says so. Call between ranges only:
   * closing releases the records it holds and spends their delivery counts.
   *
   * @param held records this consumer gave and the loop has not started; the close releases them
   * @return the reason the consumer was replaced, or empty when it is healthy
   */
  Optional<ConsumerHealth.Verdict> replaceIfUnhealthy(int held) {
    Optional<ConsumerHealth.Verdict> verdict = health.check();
    if (verdict.isEmpty()) {
      return verdict;
    }
    LOG.warn("{}: share consumer {} replaced ({}){}", name, generation, verdict.get(),
        held > 0 ? "; " + held + " task(s) it held go back to the group" : "");
    close();
    metrics.consumerReplaced(verdict.get().trigger().tag());
    subscribe(); // when this throws, the loop's next turn subscribes again
    return verdict;
  }

  /** Closes the consumer (it releases whatever it still holds); the loop's last step. */
  void close() {
    if (consumer == null) {
      return;
    }
    try {
      consumer.close(CLOSE_TIMEOUT);
    } catch (RuntimeException e) {
      LOG.warn("{}: closing its share consumer failed: {}", name, e.toString());
    } finally {
      consumer = null;
    }
  }
}
