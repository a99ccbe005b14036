package io.zcow.cli.embedded;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EmbeddedClusterTest {

  @Test
  void brokerCarriesARecordLargerThanARaw2MiBClusterAndLeavesNoThreads() throws Exception {
    Set<String> before = nonDaemonThreads();
    byte[] value = new byte[3 << 20];
    value[0] = 1;
    value[value.length - 1] = 2;
    String topic = "embedded.roundtrip";
    try (EmbeddedBroker broker = EmbeddedBroker.start(HostPort.loopbackAnyPort(), null)) {
      Path dataDir = broker.dataDir();
      assertTrue(broker.startupTime().compareTo(Duration.ofSeconds(30)) < 0, broker.startupTime().toString());
      assertTrue(broker.bootstrapServers().startsWith("127.0.0.1:"), broker.bootstrapServers());
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()))) {
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1)
            .configs(Map.of("max.message.bytes", Integer.toString(4 << 20)))))
            .all().get(30, TimeUnit.SECONDS);
      }
      try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Map.of(
          ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers(),
          ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 5 << 20),
          new ByteArraySerializer(), new ByteArraySerializer())) {
        producer.send(new ProducerRecord<>(topic, "k".getBytes(StandardCharsets.UTF_8), value)).get(30, TimeUnit.SECONDS);
      }
      try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(Map.of(
          ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers(),
          ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 5 << 20),
          new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
        TopicPartition tp = new TopicPartition(topic, 0);
        consumer.assign(List.of(tp));
        consumer.seekToBeginning(List.of(tp));
        ConsumerRecords<byte[], byte[]> records = ConsumerRecords.empty();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (records.isEmpty() && System.nanoTime() < deadline) {
          records = consumer.poll(Duration.ofMillis(500));
        }
        assertEquals(1, records.count());
        assertArrayEquals(value, records.iterator().next().value());
      }
      broker.close();
      assertFalse(Files.exists(dataDir), "temporary data directory removed");
    }
    assertEquals(Set.of(), leftOver(before), "threads left running after close");
  }

  @Test
  void zooKeeperServesCuratorAndKeepsAGivenDataDir(@TempDir Path data) throws Exception {
    Set<String> before = nonDaemonThreads();
    try (EmbeddedZooKeeper zk = EmbeddedZooKeeper.start(HostPort.loopbackAnyPort(), data);
        CuratorFramework client = CuratorFrameworkFactory.newClient(zk.connectString(), new RetryOneTime(100))) {
      assertTrue(zk.connectString().startsWith("127.0.0.1:"), zk.connectString());
      client.start();
      assertTrue(client.blockUntilConnected(20, TimeUnit.SECONDS));
      client.create().forPath("/zcow-test", new byte[] {7});
      assertArrayEquals(new byte[] {7}, client.getData().forPath("/zcow-test"));
    }
    assertTrue(Files.isDirectory(data.resolve("zookeeper")));
    assertEquals(Set.of(), leftOver(before), "threads left running after close");
  }

  @Test
  void zooKeeperOnAPortInUseFailsAtOnce() throws Exception {
    try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
      long started = System.nanoTime();
      IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
          () -> EmbeddedZooKeeper.start(new HostPort("127.0.0.1", taken.getLocalPort()), null));
      assertTrue(e.getMessage().startsWith("cannot listen on 127.0.0.1:" + taken.getLocalPort()), e.getMessage());
      assertTrue(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(5));
    }
  }

  private static Set<String> leftOver(Set<String> before) throws InterruptedException {
    // Threads end shortly after their owners close; give them a moment.
    Set<String> left = Set.of();
    for (int i = 0; i < 50; i++) {
      left = nonDaemonThreads();
      left.removeAll(before);
      if (left.isEmpty()) {
        break;
      }
      Thread.sleep(100);
    }
    return left;
  }

  private static Set<String> nonDaemonThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.isAlive() && !t.isDaemon())
        .map(Thread::getName)
        .collect(Collectors.toCollection(java.util.HashSet::new));
  }
}
