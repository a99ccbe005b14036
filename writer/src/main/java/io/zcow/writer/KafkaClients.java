package io.zcow.writer;

import io.zcow.proto.kafka.KafkaSettings;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;

/** The writer's Kafka clients, from the settings every role shares ({@link KafkaSettings}). */
final class KafkaClients {
  private KafkaClients() {}

  private static KafkaSettings settings(WriterConfig c) {
    return new KafkaSettings(c.bootstrapServers(), c.kafkaProperties(), KafkaSettings.DEFAULT_CALL_TIMEOUT, c.auth());
  }

  /**
   * A consumer that only uses assign + seek: no group, never commits. {@code chunks}: the chunks
   * topic's consumer, with {@code auto.offset.reset=none} (a position below the log start is an
   * error, not a silent jump) and fetch sizes for large records; otherwise from the earliest offset.
   */
  static KafkaConsumer<String, byte[]> assignedConsumer(WriterConfig c, String clientId, boolean chunks) {
    KafkaSettings s = settings(c);
    return new KafkaConsumer<>(chunks ? s.chunkConsumer(clientId) : s.assignedConsumer(clientId));
  }

  static KafkaProducer<String, byte[]> producer(WriterConfig c, String clientId) {
    return new KafkaProducer<>(settings(c).producer(clientId));
  }

  static Admin admin(WriterConfig c) {
    return Admin.create(settings(c).admin("zcow-writer-admin"));
  }
}
