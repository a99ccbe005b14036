package io.zcow.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Optional;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.admin.ListShareGroupOffsetsSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.SharePartitionOffsetInfo;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidConfigurationException;
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

  @Test
  void shareGroupsAreFinalizedByDefault() {
    FinalizedVersionRange share =
        KafkaCalls.await(kafka().admin().describeFeatures().featureMetadata(), "describe features")
            .finalizedFeatures()
            .get("share.version");
    assertTrue(share != null && share.maxVersionLevel() >= 1, "share.version finalized: " + share);
  }

  @Test
  void earliestShareGroupDeliversRecordsProducedBeforeItJoinedOneAtATime() {
    KafkaFixture kafka = kafka();
    String topic = newTopic("tasks");
    produce(topic, "job/0", "job/1");
    String group = shareGroup(Map.of());

    try (KafkaShareConsumer<String, byte[]> worker = shareConsumer(group, topic)) {
      long start = System.nanoTime();
      ConsumerRecord<String, byte[]> first = pollOne(worker);
      System.out.printf(
          "first delivery to a new share consumer after %d ms%n",
          Duration.ofNanos(System.nanoTime() - start).toMillis());
      assertEquals("job/0", first.key());
      assertEquals(Optional.of((short) 1), first.deliveryCount());
      worker.acknowledge(first, AcknowledgeType.ACCEPT);

      ConsumerRecord<String, byte[]> second = pollOne(worker);
      assertEquals("job/1", second.key());
      worker.acknowledge(second, AcknowledgeType.ACCEPT);
      assertNoErrors(worker.commitSync());
    }

    TopicPartition partition = new TopicPartition(topic, 0);
    long start = System.nanoTime();
    long deadline = start + PATIENCE.toNanos();
    SharePartitionOffsetInfo offsets;
    do {
      offsets =
          KafkaCalls.await(
                  kafka.admin()
                      .listShareGroupOffsets(
                          Map.of(group, new ListShareGroupOffsetsSpec().topicPartitions(List.of(partition))))
                      .partitionsToOffsetInfo(group),
                  "list share group offsets")
              .get(partition);
    } while (!offsets.lag().equals(Optional.of(0L)) && System.nanoTime() < deadline);
    System.out.printf("share offsets %s after %d ms%n", offsets, (System.nanoTime() - start) / 1_000_000);
    assertEquals(Optional.of(0L), offsets.lag(), "both records accepted: " + offsets);
  }

  @Test
  void releasedRecordGoesToAnotherConsumer() {
    KafkaFixture kafka = kafka();
    String topic = newTopic("tasks");
    produce(topic, "job/0");
    String group = shareGroup(Map.of());

    try (KafkaShareConsumer<String, byte[]> first = shareConsumer(group, topic)) {
      ConsumerRecord<String, byte[]> record = pollOne(first);
      first.acknowledge(record, AcknowledgeType.RELEASE);
      assertNoErrors(first.commitSync());

      try (KafkaShareConsumer<String, byte[]> second = shareConsumer(group, topic)) {
        long t0 = System.nanoTime();
        ConsumerRecord<String, byte[]> again = pollOne(second);
        System.out.printf("second consumer got it after %d ms%n", (System.nanoTime() - t0) / 1_000_000);
        assertEquals(record.offset(), again.offset());
        assertEquals(Optional.of((short) 2), again.deliveryCount());
        second.acknowledge(again, AcknowledgeType.ACCEPT);
        assertNoErrors(second.commitSync());
      }
    }
  }

  @Test
  void recordOfConsumerClosedWithoutAcknowledgingGoesToAnotherConsumer() {
    KafkaFixture kafka = kafka();
    String topic = newTopic("tasks");
    produce(topic, "job/0");
    String group = shareGroup(Map.of());

    long offset;
    try (KafkaShareConsumer<String, byte[]> first = shareConsumer(group, topic)) {
      offset = pollOne(first).offset();
    }
    try (KafkaShareConsumer<String, byte[]> second = shareConsumer(group, topic)) {
      ConsumerRecord<String, byte[]> again = pollOne(second);
      assertEquals(offset, again.offset());
      assertEquals(Optional.of((short) 2), again.deliveryCount());
      second.acknowledge(again, AcknowledgeType.ACCEPT);
      assertNoErrors(second.commitSync());
    }
  }

  @Test
  void lockOfConsumerThatStopsPollingExpiresAndItsLateAcceptFails() {
    KafkaFixture kafka = kafka();
    String topic = newTopic("tasks");
    produce(topic, "job/0");
    String group = shareGroup(Map.of("share.record.lock.duration.ms", Integer.toString(SHORT_LOCK_MS)));

    try (KafkaShareConsumer<String, byte[]> stalled = shareConsumer(group, topic);
        KafkaShareConsumer<String, byte[]> other = shareConsumer(group, topic)) {
      ConsumerRecord<String, byte[]> record = pollOne(stalled);
      assertEquals(Optional.of(SHORT_LOCK_MS), stalled.acquisitionLockTimeoutMs());
      long acquired = System.nanoTime();

      ConsumerRecord<String, byte[]> again = pollOne(other);
      long waitedMs = Duration.ofNanos(System.nanoTime() - acquired).toMillis();
      assertEquals(record.offset(), again.offset());
      assertEquals(Optional.of((short) 2), again.deliveryCount());
      assertTrue(waitedMs >= SHORT_LOCK_MS - 200, "redelivered after " + waitedMs + " ms");

      stalled.acknowledge(record, AcknowledgeType.ACCEPT);
      Map<TopicIdPartition, Optional<KafkaException>> late = stalled.commitSync();
      assertTrue(
          late.values().stream().anyMatch(Optional::isPresent),
          "an accept after the lock expired must fail: " + late);
      other.acknowledge(again, AcknowledgeType.ACCEPT);
      assertNoErrors(other.commitSync());
    }
  }

  @Test
  void renewKeepsTheLockBeyondItsDuration() {
    KafkaFixture kafka = kafka();
    String topic = newTopic("tasks");
    produce(topic, "job/0");
    String group = shareGroup(Map.of("share.record.lock.duration.ms", Integer.toString(SHORT_LOCK_MS)));

    try (KafkaShareConsumer<String, byte[]> holder = shareConsumer(group, topic);
        KafkaShareConsumer<String, byte[]> other = shareConsumer(group, topic)) {
      ConsumerRecord<String, byte[]> record = pollOne(holder);
      long renewUntil = System.nanoTime() + Duration.ofMillis(3L * SHORT_LOCK_MS).toNanos();
      int renewals = 0;
      // Only a record returned by the latest poll can be acknowledged: a renewed record is handed
      // back by a later poll (the same delivery, not a new one), and is renewed again from there.
      ConsumerRecord<String, byte[]> toRenew = record;
      while (System.nanoTime() < renewUntil) {
        if (toRenew != null) {
          holder.acknowledge(toRenew, AcknowledgeType.RENEW);
          renewals++;
          toRenew = null;
        }
        for (ConsumerRecord<String, byte[]> returned : holder.poll(Duration.ofMillis(300))) {
          assertEquals(record.offset(), returned.offset());
          assertEquals(Optional.of((short) 1), returned.deliveryCount());
          toRenew = returned;
          record = returned;
        }
        assertTrue(other.poll(Duration.ofMillis(200)).isEmpty(), "a renewed record stays locked");
      }
      if (toRenew == null) {
        record = pollOne(holder);
      }
      holder.acknowledge(record, AcknowledgeType.ACCEPT);
      assertNoErrors(holder.commitSync());
      System.out.printf("renewed %d times over %d ms%n", renewals, 3 * SHORT_LOCK_MS);
      assertTrue(renewals >= 3, "renewed " + renewals + " times");
    }
  }

  @Test
  void segmentsMayBeOneMebibyteButNotSmallerAndDeleteRecordsMovesTheStart() {
    KafkaFixture kafka = kafka();
    String tooSmall = kafka.uniqueName("chunks");
    IllegalStateException refused =
        assertThrows(
            IllegalStateException.class,
            () -> kafka.createTopic(tooSmall, 1, Map.of("segment.bytes", "524288")));
    assertInstanceOf(InvalidConfigurationException.class, refused.getCause());

    String topic = kafka.uniqueName("chunks");
    kafka.createTopic(topic, 1, Map.of("segment.bytes", Integer.toString(1 << 20)));
    try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(kafka.producerProps())) {
      for (int i = 0; i < 3; i++) {
        producer.send(new ProducerRecord<>(topic, "job/" + i, randomBytes(600 << 10, i))).get();
      }
    } catch (Exception e) {
      fail(e);
    }
    TopicPartition partition = new TopicPartition(topic, 0);
    KafkaCalls.await(
        kafka.admin().deleteRecords(Map.of(partition, RecordsToDelete.beforeOffset(2))).all(),
        "delete records");
    List<ConsumerRecord<String, byte[]>> left = readFromStart(kafka, topic, 1);
    assertEquals(2, left.get(0).offset());
  }

  /** Share group record locks last this long in the lock tests (broker minimum lowered to 1 s). */
  static final int SHORT_LOCK_MS = 2000;

  /**
   * A share group starting at the earliest offset, with a 1 s heartbeat so that a second consumer
   * gets its partitions within a second rather than five.
   */
  private String shareGroup(Map<String, String> moreConfig) {
    String group = kafka().uniqueName("workers");
    kafka().setShareGroupEarliest(group);
    Map<String, String> config = new HashMap<>(moreConfig);
    config.put("share.heartbeat.interval.ms", "1000");
    kafka().alterGroupConfig(group, config);
    return group;
  }

  private String newTopic(String prefix) {
    String topic = kafka().uniqueName(prefix);
    kafka().createTopic(topic, 1, Map.of());
    return topic;
  }

  private void produce(String topic, String... keys) {
    try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(kafka().producerProps())) {
      for (String key : keys) {
        producer.send(new ProducerRecord<>(topic, key, key.getBytes())).get();
      }
    } catch (Exception e) {
      fail("could not produce to " + topic, e);
    }
  }

  private KafkaShareConsumer<String, byte[]> shareConsumer(String group, String topic) {
    KafkaShareConsumer<String, byte[]> consumer =
        new KafkaShareConsumer<>(kafka().shareConsumerProps(group));
    consumer.subscribe(List.of(topic));
    return consumer;
  }

  /** Polls until a record arrives; with record_limit and max.poll.records=1 it comes alone. */
  static ConsumerRecord<String, byte[]> pollOne(KafkaShareConsumer<String, byte[]> consumer) {
    long deadline = System.nanoTime() + PATIENCE.toNanos();
    while (System.nanoTime() < deadline) {
      ConsumerRecords<String, byte[]> records = consumer.poll(Duration.ofMillis(200));
      if (!records.isEmpty()) {
        assertEquals(1, records.count(), "records in one poll");
        return records.iterator().next();
      }
    }
    return fail("no record delivered within " + PATIENCE);
  }

  static void assertNoErrors(Map<TopicIdPartition, Optional<KafkaException>> results) {
    results.forEach((partition, error) -> assertNull(error.orElse(null), "ack on " + partition));
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
