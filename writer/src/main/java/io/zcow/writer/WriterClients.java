package io.zcow.writer;

import io.zcow.proto.kafka.KafkaSettings;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.TopicPartition;

/**
 * Where a writer term gets its Kafka clients: the real ones from the settings every role shares,
 * or kafka-clients' {@code MockConsumer}/{@code MockProducer} in unit tests. A term owns and
 * closes what it gets.
 */
public interface WriterClients {
  /** A consumer that only uses assign + seek: no group, never commits; from the earliest offset. */
  Consumer<String, byte[]> consumer(String clientId);

  /**
   * The chunks topic's consumer: {@code auto.offset.reset=none} (a position below the log start
   * is an error, not a silent jump) and fetch sizes for large records.
   */
  Consumer<String, byte[]> chunkConsumer(String clientId);

  Producer<String, byte[]> producer(String clientId);

  /**
   * Deletes records below the given offsets (what a committed checkpoint covers); returns once
   * done or failed. A failure only delays reclaiming space.
   *
   * @throws InterruptedException when interrupted while waiting
   * @throws Exception when the deletion failed or timed out
   */
  void deleteRecordsBelow(Map<TopicPartition, Long> offsets) throws Exception;

  /** Releases what the clients share (the admin client). */
  default void close() {}

  /** The real clients. */
  static WriterClients of(WriterConfig config) {
    KafkaSettings s = config.kafka();
    return new WriterClients() {
      private Admin admin;

      @Override
      public Consumer<String, byte[]> consumer(String clientId) {
        return new KafkaConsumer<>(s.assignedConsumer(clientId));
      }

      @Override
      public Consumer<String, byte[]> chunkConsumer(String clientId) {
        return new KafkaConsumer<>(s.chunkConsumer(clientId));
      }

      @Override
      public Producer<String, byte[]> producer(String clientId) {
        return new KafkaProducer<>(s.producer(clientId));
      }

      @Override
      public synchronized void deleteRecordsBelow(Map<TopicPartition, Long> offsets)
          throws InterruptedException, ExecutionException, TimeoutException {
        if (admin == null) {
          admin = Admin.create(s.admin("zcow-writer-admin"));
        }
        Map<TopicPartition, RecordsToDelete> del = new HashMap<>();
        offsets.forEach((tp, o) -> del.put(tp, RecordsToDelete.beforeOffset(o)));
        admin.deleteRecords(del).all().get(s.callTimeout().toMillis(), TimeUnit.MILLISECONDS);
      }

      @Override
      public synchronized void close() {
        if (admin != null) {
          admin.close(Duration.ofSeconds(5));
        }
      }
    };
  }
}
