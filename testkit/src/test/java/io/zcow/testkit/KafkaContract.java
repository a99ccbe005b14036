package io.zcow.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/**
 * The Kafka behaviour zcow relies on, pinned against a real broker. Subclasses supply the broker:
 * the embedded one always, a Testcontainers one where Docker is available.
 */
abstract class KafkaContract {

  /** Generous: the first delivery to a new share consumer takes seconds. */
  static final Duration PATIENCE = Duration.ofSeconds(30);

  abstract KafkaFixture kafka();

  @Test
  void producesAndConsumesOneAndTwoMebibyteRecords() throws Exception {
    KafkaFixture kafka = kafka();
    String topic = kafka.uniqueName("big-records");
    kafka.createTopic(topic, 1, Map.of());
    byte[] oneMiB = randomBytes(1 << 20, 1);
    byte[] twoMiBPlus = randomBytes((2 << 20) + 64 * 1024, 2);

    try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(kafka.producerProps())) {
      producer.send(new ProducerRecord<>(topic, "job/0", oneMiB)).get();
      producer.send(new ProducerRecord<>(topic, "job/1", twoMiBPlus)).get();
    }

    List<ConsumerRecord<String, byte[]>> received = readFromStart(kafka, topic, 2);
    assertEquals("job/0", received.get(0).key());
    assertArrayEquals(oneMiB, received.get(0).value());
    assertEquals("job/1", received.get(1).key());
    assertArrayEquals(twoMiBPlus, received.get(1).value());
  }

  static byte[] randomBytes(int length, long seed) {
    byte[] bytes = new byte[length];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  /** Reads partition 0 from its start by assign/seek (no group), as the writer does. */
  static List<ConsumerRecord<String, byte[]>> readFromStart(
      KafkaFixture kafka, String topic, int count) {
    TopicPartition partition = new TopicPartition(topic, 0);
    List<ConsumerRecord<String, byte[]>> received = new ArrayList<>();
    try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(kafka.consumerProps(null))) {
      consumer.assign(List.of(partition));
      consumer.seekToBeginning(List.of(partition));
      long deadline = System.nanoTime() + PATIENCE.toNanos();
      while (received.size() < count && System.nanoTime() < deadline) {
        consumer.poll(Duration.ofMillis(200)).forEach(received::add);
      }
    }
    assertEquals(count, received.size(), "records read from " + topic);
    return received;
  }
}
