package io.zcow.testkit;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.test.KafkaClusterTestKit;
import org.apache.kafka.common.test.TestKitNodes;
import org.apache.kafka.metadata.bootstrap.BootstrapMetadata;
import org.apache.kafka.server.common.Feature;
import org.apache.kafka.server.common.MetadataVersion;

/**
 * A real Kafka 4.2 broker in this JVM: one KRaft node that is broker and controller at once,
 * started through Kafka's own cluster test kit on a loopback port.
 *
 * <p>There is one broker per JVM ({@link #shared()}), started on first use (about 3 s) and stopped
 * by a shutdown hook; surefire runs a module's test classes in one JVM, so they all share it. Use
 * {@link EmbeddedKafkaExtension} to get it injected into a test.
 *
 * <p>The broker runs the latest <em>production</em> metadata version and feature levels, as a
 * released broker formats them (the test kit's default is the unreleased testing level), so
 * {@code share.version=1} comes from Kafka's own default. Its settings are {@link #brokerConfig()}.
 */
public final class EmbeddedKafka implements KafkaFixture {

  private static final Object LOCK = new Object();

  /** Guarded by LOCK. */
  private static EmbeddedKafka shared;

  /** Guarded by LOCK: a failed start is not retried, every later test fails with its cause. */
  private static RuntimeException startFailure;

  private final KafkaClusterTestKit cluster;
  private final Admin admin;
  private final Duration startupTime;

  private EmbeddedKafka(KafkaClusterTestKit cluster, Duration startupTime) {
    this.cluster = cluster;
    this.startupTime = startupTime;
    this.admin =
        Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers()));
  }

  /**
   * The broker of this JVM, started on the first call.
   *
   * @throws IllegalStateException if the broker could not start (now or on an earlier call)
   */
  public static EmbeddedKafka shared() {
    synchronized (LOCK) {
      if (shared != null) {
        return shared;
      }
      if (startFailure != null) {
        throw new IllegalStateException("the embedded Kafka broker failed to start earlier", startFailure);
      }
      try {
        shared = start();
      } catch (RuntimeException e) {
        startFailure = e;
        throw e;
      }
      EmbeddedKafka broker = shared;
      Runtime.getRuntime()
          .addShutdownHook(new Thread(broker::stop, "embedded-kafka-shutdown"));
      return broker;
    }
  }

  /**
   * The broker settings that differ from Kafka's defaults, each for a reason given here. The
   * Testcontainers contract test applies the same map, so both brokers behave alike.
   */
  public static Map<String, String> brokerConfig() {
    Map<String, String> config = new LinkedHashMap<>();
    // One broker: every internal topic has one replica. One partition each, because the defaults
    // (50) make the first group of a test run wait for 50 partitions to be created.
    config.put("offsets.topic.replication.factor", "1");
    config.put("offsets.topic.num.partitions", "1");
    config.put("transaction.state.log.replication.factor", "1");
    config.put("transaction.state.log.min.isr", "1");
    config.put("transaction.state.log.num.partitions", "1");
    config.put("share.coordinator.state.topic.replication.factor", "1");
    config.put("share.coordinator.state.topic.min.isr", "1");
    config.put("share.coordinator.state.topic.num.partitions", "1");
    // Chunk batches of raw 2 MiB clusters must fit, framing included.
    config.put("message.max.bytes", Integer.toString(MAX_MESSAGE_BYTES));
    config.put("replica.fetch.max.bytes", Integer.toString(MAX_MESSAGE_BYTES));
    // Tests may shorten a share group's lock (group config share.record.lock.duration.ms) to see
    // expiry in seconds; the broker's maximum (group.share.max.record.lock.duration.ms, 60 s)
    // stays at its default, as the worker must live with it.
    config.put("group.share.min.record.lock.duration.ms", "1000");
    // Likewise for the heartbeat: a share consumer joining a group with members gets its partitions
    // one heartbeat after joining (group.share.heartbeat.interval.ms, 5 s); tests may shorten it
    // per group (share.heartbeat.interval.ms) while the default stays as released.
    config.put("group.share.min.heartbeat.interval.ms", "500");
    // Classic groups otherwise wait 3 s for more members before the first assignment.
    config.put("group.initial.rebalance.delay.ms", "0");
    // Segments below a deleteRecords point are only removed by the retention check (every 5 min by
    // default): the writer's trim tests must see the space come back within seconds.
    // The first check runs only log.initial.task.delay.ms (30 s) after startup.
    config.put("log.retention.check.interval.ms", "1000");
    config.put("log.initial.task.delay.ms", "1000");
    // zcow creates its topics; an auto-created topic would hide a missing creation.
    config.put("auto.create.topics.enable", "false");
    // The test kit turns these on; a released broker has them off.
    config.put("unstable.api.versions.enable", "false");
    config.put("unstable.feature.versions.enable", "false");
    return config;
  }

  private static EmbeddedKafka start() {
    long startNanos = System.nanoTime();
    KafkaClusterTestKit cluster = null;
    try {
      MetadataVersion version = MetadataVersion.latestProduction();
      Map<String, Short> features = new TreeMap<>();
      for (Feature feature : Feature.PRODUCTION_FEATURES) {
        features.put(feature.featureName(), feature.defaultLevel(version));
      }
      // Our own directory: the test kit's default one is deleted by a shutdown hook of its own,
      // which runs concurrently with ours and can pull the log dir from under the closing broker;
      // the broker then halts the JVM with status 1 and surefire reports a crashed fork.
      Path baseDirectory = Files.createTempDirectory("zcow-kafka-");
      TestKitNodes nodes =
          new TestKitNodes.Builder(BootstrapMetadata.fromVersions(version, features, "zcow-testkit"))
              .setBaseDirectory(baseDirectory)
              .setCombined(true)
              .setNumBrokerNodes(1)
              .setNumControllerNodes(1)
              .build();
      KafkaClusterTestKit.Builder builder =
          new KafkaClusterTestKit.Builder(nodes).setDeleteOnClose(true);
      brokerConfig().forEach(builder::setConfigProp);
      cluster = builder.build();
      cluster.format();
      cluster.startup();
      cluster.waitForReadyBrokers();
      return new EmbeddedKafka(cluster, Duration.ofNanos(System.nanoTime() - startNanos));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      closeQuietly(cluster);
      throw new IllegalStateException("interrupted while starting the embedded Kafka broker", e);
    } catch (Exception e) {
      closeQuietly(cluster);
      throw new IllegalStateException("could not start the embedded Kafka broker: " + e, e);
    }
  }

  private static void closeQuietly(KafkaClusterTestKit cluster) {
    if (cluster != null) {
      try {
        cluster.close();
      } catch (Exception e) {
        // Already failing; the start failure is the one worth reporting.
      }
    }
  }

  private void stop() {
    admin.close(Duration.ofSeconds(5));
    closeQuietly(cluster);
  }

  @Override
  public String bootstrapServers() {
    return cluster.bootstrapServers();
  }

  @Override
  public Admin admin() {
    return admin;
  }

  /** How long the broker took from configuration to accepting clients. */
  public Duration startupTime() {
    return startupTime;
  }

  @Override
  public String toString() {
    return "EmbeddedKafka[" + bootstrapServers() + "]";
  }
}
