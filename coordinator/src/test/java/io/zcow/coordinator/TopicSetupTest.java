package io.zcow.coordinator;

import io.zcow.proto.kafka.KafkaSettings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.RetriableException;
import io.zcow.proto.Topics;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(EmbeddedKafkaExtension.class)
class TopicSetupTest {

  @Test
  void secondRunCreatesNothingAndFailsNothing(EmbeddedKafka kafka) throws Exception {
    TopicSetup.Plan plan = TopicSetup.Plan.defaults(kafka.uniqueName("twice"));
    TopicSetup.ensure(kafka.admin(), plan, Duration.ofSeconds(30));
    TopicSetup.Result again = TopicSetup.ensure(kafka.admin(), plan, Duration.ofSeconds(30));

    assertEquals(List.of(), again.created());
    assertEquals(1, again.replicationFactor());
    String chunks = Topics.chunks(plan.writerGroup());
    ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, chunks);
    var config = kafka.admin().describeConfigs(List.of(topic)).values().get(topic).get(30, TimeUnit.SECONDS);
    assertEquals(Long.toString(16L << 20), config.get("segment.bytes").value());
    assertEquals(Integer.toString(64 << 10), config.get("segment.index.bytes").value());
    assertEquals(Integer.toString(plan.chunkRecordLimit()), config.get("max.message.bytes").value());
    assertEquals(8, kafka.admin().describeTopics(List.of(chunks)).allTopicNames().get(30, TimeUnit.SECONDS)
        .get(chunks).partitions().size());
    ConfigResource jobs = new ConfigResource(ConfigResource.Type.TOPIC, Topics.JOBS);
    assertEquals("compact", kafka.admin().describeConfigs(List.of(jobs)).values().get(jobs)
        .get(30, TimeUnit.SECONDS).get("cleanup.policy").value());
  }

  @Test
  void shareConsumerJoiningAfterSetupGetsATaskProducedBeforeIt(EmbeddedKafka kafka) throws Exception {
    TopicSetup.Result result = TopicSetup.ensure(kafka.admin(),
        TopicSetup.Plan.defaults(kafka.uniqueName("share")), Duration.ofSeconds(30));
    assertEquals(60_000, result.lockDurationMs());
    String key = kafka.uniqueName("job") + "/0";
    Map<String, Object> producerProps = kafka.producerProps();
    try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(producerProps)) {
      producer.send(new ProducerRecord<>(Topics.TASKS, key, "task".getBytes(StandardCharsets.UTF_8)))
          .get(30, TimeUnit.SECONDS);
    }
    Map<String, Object> props = kafka.shareConsumerProps(Topics.WORKER_GROUP);
    props.put("key.deserializer", StringDeserializer.class.getName());
    try (KafkaShareConsumer<String, byte[]> consumer = new KafkaShareConsumer<>(props)) {
      consumer.subscribe(List.of(Topics.TASKS));
      boolean seen = false;
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (!seen && System.nanoTime() < deadline) {
        ConsumerRecords<String, byte[]> records = consumer.poll(Duration.ofMillis(500));
        for (ConsumerRecord<String, byte[]> r : records) {
          seen |= r.key().equals(key);
          consumer.acknowledge(r, AcknowledgeType.ACCEPT);
        }
        if (!records.isEmpty()) {
          consumer.commitSync(Duration.ofSeconds(30));
        }
      }
      assertTrue(seen, "the task produced before the consumer joined was delivered");
    }
  }

  /**
   * Two tasks whose keys would share a partition of an 8-partition topic: each of two idle
   * workers must get one. With partitions dealt one member each, one worker got both in turn.
   */
  @Test
  void twoIdleWorkersEachTakeOneOfTwoTasks(EmbeddedKafka kafka) throws Exception {
    TopicSetup.ensure(kafka.admin(), TopicSetup.Plan.defaults(kafka.uniqueName("spread")), Duration.ofSeconds(30));
    assertEquals(TopicSetup.TASK_PARTITIONS, kafka.admin().describeTopics(List.of(Topics.TASKS)).allTopicNames()
        .get(30, TimeUnit.SECONDS).get(Topics.TASKS).partitions().size());
    String job = kafka.uniqueName("spread");
    List<String> keys = new java.util.ArrayList<>();
    for (int range = 0; keys.size() < 2; range++) {
      String key = job + "/" + range;
      int partitionOf8 = org.apache.kafka.common.utils.Utils.toPositive(
          org.apache.kafka.common.utils.Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % 8;
      if (partitionOf8 == 0) {
        keys.add(key);
      }
    }
    try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(kafka.producerProps())) {
      for (String key : keys) {
        producer.send(new ProducerRecord<>(Topics.TASKS, key, new byte[] {1})).get(30, TimeUnit.SECONDS);
      }
    }
    KafkaSettings settings = KafkaSettings.of(kafka.bootstrapServers());
    try (KafkaShareConsumer<String, byte[]> a = new KafkaShareConsumer<>(settings.shareConsumer(Topics.WORKER_GROUP, "a"));
        KafkaShareConsumer<String, byte[]> b = new KafkaShareConsumer<>(settings.shareConsumer(Topics.WORKER_GROUP, "b"))) {
      a.subscribe(List.of(Topics.TASKS));
      b.subscribe(List.of(Topics.TASKS));
      String heldByA = null;
      String heldByB = null;
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while ((heldByA == null || heldByB == null) && System.nanoTime() < deadline) {
        if (heldByA == null) {
          heldByA = takeOneOf(a, keys);
        }
        if (heldByB == null) {
          heldByB = takeOneOf(b, keys);
        }
      }
      assertTrue(heldByA != null && heldByB != null && !heldByA.equals(heldByB),
          "each worker holds one task: a=" + heldByA + ", b=" + heldByB);
    }
  }

  /** Polls once; holds (does not acknowledge) a record with one of {@code keys}, accepts others. */
  private static String takeOneOf(KafkaShareConsumer<String, byte[]> consumer, List<String> keys) {
    String held = null;
    for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(200))) {
      if (keys.contains(r.key())) {
        held = r.key();
      } else {
        consumer.acknowledge(r, AcknowledgeType.ACCEPT);
        consumer.commitSync(Duration.ofSeconds(30));
      }
    }
    return held;
  }

  @Test
  void unresolvableBootstrapFailsInBoundedTimeNamingIt() {
    KafkaSettings settings = KafkaSettings.of("no-such-host.invalid:9092").withCallTimeout(Duration.ofSeconds(3));
    long started = System.nanoTime();
    io.zcow.ZcowException e = assertThrows(io.zcow.ZcowException.class,
        () -> TopicSetup.ensure(settings, TopicSetup.Plan.defaults("g")));
    assertTrue(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(12));
    assertTrue(e.getMessage().contains("no-such-host.invalid:9092") && !e.getMessage().contains("\n"), e.getMessage());
  }

  @Test
  void unreachableBootstrapFailsInBoundedTimeWithOneLine() throws IOException {
    int closedPort;
    try (ServerSocket s = new ServerSocket(0)) {
      closedPort = s.getLocalPort();
    }
    KafkaSettings settings = KafkaSettings.of("127.0.0.1:" + closedPort).withCallTimeout(Duration.ofSeconds(3));
    long started = System.nanoTime();
    RetriableException e = assertThrows(RetriableException.class,
        () -> TopicSetup.ensure(settings, TopicSetup.Plan.defaults("g")));
    long secs = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started);
    assertTrue(secs < 12, "gave up after " + secs + " s");
    assertEquals("Kafka at 127.0.0.1:" + closedPort + " is not reachable within 3 s", e.getMessage());
  }
}
