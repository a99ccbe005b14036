package io.zcow.writer;

import io.zcow.proto.kafka.KafkaSettings;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
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
   * Deletes records below the given offsets (what a committed checkpoint covers). The real clients
   * start the deletion and return at once (a broker out of reach must not hold the term for an
   * admin timeout); while one is still under way, the next call is skipped. A failure is logged and
   * only delays reclaiming space.
   *
   * @throws InterruptedException when interrupted while waiting
   * @throws Exception when the deletion could not be started
   */
  void deleteRecordsBelow(Map<TopicPartition, Long> offsets) throws Exception;

  /** Releases what the clients share (the admin client). */
  default void close() {}

  /** The real clients. */
  static WriterClients of(WriterConfig config) {
    KafkaSettings s = config.kafka();
    return new WriterClients() {
      private Admin admin;
      private org.apache.kafka.common.KafkaFuture<Void> pending;

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
      public synchronized void deleteRecordsBelow(Map<TopicPartition, Long> offsets) {
        if (pending != null && !pending.isDone()) {
          return; // the previous trim is still under way: the next checkpoint trims further
        }
        if (admin == null) {
          admin = Admin.create(s.admin("zcow-writer-admin"));
        }
        Map<TopicPartition, RecordsToDelete> del = new HashMap<>();
        offsets.forEach((tp, o) -> del.put(tp, RecordsToDelete.beforeOffset(o)));
        pending = admin.deleteRecords(del).all().whenComplete((v, e) -> {
          if (e != null) {
            org.slf4j.LoggerFactory.getLogger(WriterClients.class).warn("[group={}] cannot trim {}: {}",
                config.group(), config.chunksTopic(), e.toString());
          }
        });
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
