package io.zcow.proto.kafka;

import io.zcow.RetriableException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/**
 * Reads a topic without a consumer group (assign + seek; nothing is committed): every role that
 * needs "everything published so far" — the jobs topic before a loop starts, or before it calls a
 * job unknown — reads it through this class.
 *
 * <p>Not thread safe: owned by the thread that polls it.
 */
public final class TopicReader implements AutoCloseable {
  private final org.apache.kafka.clients.consumer.Consumer<String, byte[]> consumer;
  private final String topic;
  private final Duration callTimeout;
  private List<TopicPartition> partitions = List.of();

  /**
   * @param consumer a consumer without a group id, owned from now on (closed by {@link #close()})
   */
  public TopicReader(org.apache.kafka.clients.consumer.Consumer<String, byte[]> consumer, String topic,
      Duration callTimeout) {
    this.consumer = consumer;
    this.topic = topic;
    this.callTimeout = callTimeout;
  }

  /**
   * Assigns every partition of the topic (again, when it has grown; new partitions from their
   * beginning), from the beginning on the first call or from the end with {@code fromEnd}.
   *
   * @return false while the topic does not exist
   */
  public boolean assign(boolean fromEnd) {
    List<PartitionInfo> infos = consumer.partitionsFor(topic, callTimeout);
    if (infos == null || infos.isEmpty()) {
      return false;
    }
    if (infos.size() != partitions.size()) {
      List<TopicPartition> all = new ArrayList<>();
      for (PartitionInfo info : infos) {
        all.add(new TopicPartition(topic, info.partition()));
      }
      List<TopicPartition> added = new ArrayList<>(all);
      added.removeAll(partitions);
      consumer.assign(all);
      if (fromEnd && partitions.isEmpty()) {
        consumer.seekToEnd(added);
      } else {
        consumer.seekToBeginning(added);
      }
      partitions = List.copyOf(all);
    }
    return true;
  }

  /** The end offsets now: what "everything published so far" means for {@link #reached}. */
  public Map<TopicPartition, Long> ends() {
    return consumer.endOffsets(partitions, callTimeout);
  }

  /** Whether every partition has been read up to {@code ends}. */
  public boolean reached(Map<TopicPartition, Long> ends) {
    for (Map.Entry<TopicPartition, Long> e : ends.entrySet()) {
      if (consumer.position(e.getKey(), callTimeout) < e.getValue()) {
        return false;
      }
    }
    return true;
  }

  /** One poll; each record goes to {@code sink}. */
  public int poll(Duration timeout, Consumer<ConsumerRecord<String, byte[]>> sink) {
    int n = 0;
    for (ConsumerRecord<String, byte[]> r : consumer.poll(timeout)) {
      sink.accept(r);
      n++;
    }
    return n;
  }

  /**
   * Reads everything published before this call (assigning first if needed).
   *
   * @throws RetriableException when the topic does not exist or is not read to its end in time
   */
  public void readToEnd(Duration timeout, Consumer<ConsumerRecord<String, byte[]>> sink) {
    if (partitions.isEmpty() && !assign(false)) {
      throw new RetriableException("topic " + topic + " does not exist (a coordinator creates it)", null);
    }
    Map<TopicPartition, Long> ends = ends();
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!reached(ends)) {
      if (System.nanoTime() - deadline > 0) {
        throw new RetriableException("cannot read " + topic + " to its end within " + timeout.toSeconds() + " s", null);
      }
      poll(Duration.ofMillis(100), sink);
    }
  }

  /** Wakes a poll in progress (from any thread). */
  public void wakeup() {
    consumer.wakeup();
  }

  @Override
  public void close() {
    consumer.close(Duration.ofSeconds(5));
  }
}
