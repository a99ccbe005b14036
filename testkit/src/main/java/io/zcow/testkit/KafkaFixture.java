package io.zcow.testkit;

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A Kafka cluster a test can talk to, with the helpers every module's tests need. {@link
 * EmbeddedKafka} is the one tests normally use; the testkit's own contract tests also run these
 * helpers against a Testcontainers broker, so nothing here may depend on how the broker runs.
 *
 * <p>The cluster is shared by every test of a JVM: give each test its own topics and groups with
 * {@link #uniqueName(String)}. All methods are thread safe. The property maps are fresh, mutable
 * copies: adjust them freely. Keys are {@code String} and values {@code byte[]}, as in zcow's
 * topics ({@code job/range} keys, protobuf values).
 */
public interface KafkaFixture {

  /**
   * The largest record batch the fixture brokers accept, and the producers' request limit: room for
   * a raw 2 MiB cluster plus the batch and message framing around it.
   */
  int MAX_MESSAGE_BYTES = 8 << 20;

  /** How long an admin call may take before the helper gives up. */
  Duration ADMIN_TIMEOUT = Duration.ofSeconds(30);

  /** The {@code host:port} list clients connect to. */
  String bootstrapServers();

  /**
   * An admin client owned by the fixture and shared by all tests; do not close it.
   */
  Admin admin();

  /**
   * Creates a topic with replication factor 1 and waits until the controller has accepted it.
   *
   * @param configs topic configs such as {@code segment.bytes}; may be empty
   * @throws IllegalStateException naming the topic when the broker refuses it
   */
  default void createTopic(String name, int partitions, Map<String, String> configs) {
    if (partitions < 1) {
      throw new IllegalArgumentException("partitions must be at least 1, was " + partitions);
    }
    NewTopic topic = new NewTopic(name, partitions, (short) 1).configs(Map.copyOf(configs));
    KafkaCalls.await(
        admin().createTopics(List.of(topic)).all(), "create topic " + name + " " + configs);
  }

  /** Producer settings: idempotent, {@code acks=all}, requests up to {@link #MAX_MESSAGE_BYTES}. */
  default Map<String, Object> producerProps() {
    Map<String, Object> props = new HashMap<>();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers());
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    props.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, MAX_MESSAGE_BYTES);
    return props;
  }

  /**
   * Classic consumer settings: starts at the earliest offset, never commits on its own.
   *
   * @param groupId the consumer group; {@code null} for a consumer that only uses {@code assign}
   */
  default Map<String, Object> consumerProps(String groupId) {
    Map<String, Object> props = deserializers();
    if (groupId != null) {
      props.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
    }
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    return props;
  }

  /**
   * Share consumer settings as the worker uses them: explicit acknowledgement (otherwise the next
   * {@code poll} accepts a record implicitly) and one record per poll. {@code max.poll.records} is
   * only a hint in the default {@code batch_optimized} acquire mode, hence {@code record_limit}.
   *
   * <p>A new share group starts at the latest offset: call {@link #setShareGroupEarliest(String)}
   * before the first consumer joins if records produced earlier must be delivered.
   *
   * <p>A consumer joining a group that already has members may get its first record only a
   * heartbeat later (5 s by default): poll patiently, or shorten the group's heartbeat with
   * {@code alterGroupConfig(group, Map.of("share.heartbeat.interval.ms", "1000"))} (the fixture
   * brokers accept down to 500 ms).
   */
  default Map<String, Object> shareConsumerProps(String groupId) {
    Map<String, Object> props = deserializers();
    props.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
    props.put(ConsumerConfig.SHARE_ACKNOWLEDGEMENT_MODE_CONFIG, "explicit");
    props.put(ConsumerConfig.SHARE_ACQUIRE_MODE_CONFIG, "record_limit");
    props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 1);
    return props;
  }

  /** Makes a share group start at the earliest offset ({@code share.auto.offset.reset}). */
  default void setShareGroupEarliest(String groupId) {
    alterGroupConfig(groupId, Map.of("share.auto.offset.reset", "earliest"));
  }

  /**
   * Sets dynamic group configs (for example {@code share.record.lock.duration.ms}); the group need
   * not exist yet.
   */
  default void alterGroupConfig(String groupId, Map<String, String> configs) {
    ConfigResource group = new ConfigResource(ConfigResource.Type.GROUP, groupId);
    Collection<AlterConfigOp> ops =
        configs.entrySet().stream()
            .map(e -> new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue()), AlterConfigOp.OpType.SET))
            .toList();
    KafkaCalls.await(
        admin().incrementalAlterConfigs(Map.of(group, ops)).all(),
        "set " + configs + " on group " + groupId);
  }

  /**
   * A topic or group name no other test of this JVM, nor of another JVM on the same broker, will
   * pick: {@code prefix-<jvm token>-<counter>}.
   */
  default String uniqueName(String prefix) {
    return UniqueNames.next(prefix);
  }

  private Map<String, Object> deserializers() {
    Map<String, Object> props = new HashMap<>();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers());
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    return props;
  }
}
