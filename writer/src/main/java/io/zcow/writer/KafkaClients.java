package io.zcow.writer;

import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** The writer's Kafka clients, built from its config (extra properties from --kafka-config first). */
final class KafkaClients {
  /** Room for a batch with a raw 2 MiB cluster and its framing. */
  static final int MAX_RECORD_BYTES = 8 << 20;

  private KafkaClients() {}

  private static Map<String, Object> base(WriterConfig c) {
    Map<String, Object> p = new HashMap<>(c.kafkaProperties());
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, c.bootstrapServers());
    return p;
  }

  /**
   * A consumer that only uses assign + seek: no group, never commits, and
   * {@code auto.offset.reset=none} (a position below the log start is an error, not a silent jump).
   */
  static KafkaConsumer<String, byte[]> assignedConsumer(WriterConfig c, String clientId, boolean resetNone) {
    Map<String, Object> p = base(c);
    p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, resetNone ? "none" : "earliest");
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, MAX_RECORD_BYTES);
    p.put(ConsumerConfig.RECEIVE_BUFFER_CONFIG, -1);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    return new KafkaConsumer<>(p);
  }

  static KafkaProducer<String, byte[]> producer(WriterConfig c, String clientId) {
    Map<String, Object> p = base(c);
    p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    return new KafkaProducer<>(p);
  }

  static Admin admin(WriterConfig c) {
    return Admin.create(base(c));
  }
}
