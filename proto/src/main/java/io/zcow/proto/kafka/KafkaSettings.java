package io.zcow.proto.kafka;

import io.zcow.BadInputException;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Kafka client settings of zcow: where the cluster is, what the operator adds (TLS, SASL,
 * timeouts: a {@code --kafka-config} properties file), and the settings zcow's correctness or
 * throughput depends on, which no file can override.
 *
 * <p>Every client gets socket buffers of -1 (the OS autotunes them: measurably faster for 1 MiB
 * records than Kafka's 128 KiB and 64 KiB defaults). Keys are strings, values byte arrays
 * (protobuf). Immutable and thread safe; each method returns a fresh Properties.
 *
 * @param bootstrapServers "HOST:PORT[,HOST:PORT…]"
 * @param extra client properties from the operator's file, applied to every client
 * @param callTimeout the longest an admin call may wait for the cluster
 * @param auth signs the records every role produces and checks those it consumes ({@link
 *     RecordAuth#NONE} without {@code --auth-key-file})
 */
public record KafkaSettings(String bootstrapServers, Map<String, String> extra, java.time.Duration callTimeout,
    RecordAuth auth) {
  /** The longest an admin call (and so an unreachable cluster) may take by default. */
  public static final java.time.Duration DEFAULT_CALL_TIMEOUT = java.time.Duration.ofSeconds(15);

  /**
   * Keys zcow sets itself: the file may not change them, since the roles rely on their values
   * (explicit acknowledgement, one task at a time, no consumer group where none is meant...).
   */
  static final Set<String> OWNED_KEYS = Set.of(
      CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG,
      ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG,
      ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG,
      ConsumerConfig.GROUP_ID_CONFIG, ConsumerConfig.GROUP_PROTOCOL_CONFIG,
      ConsumerConfig.SHARE_ACKNOWLEDGEMENT_MODE_CONFIG, ConsumerConfig.SHARE_ACQUIRE_MODE_CONFIG,
      ConsumerConfig.MAX_POLL_RECORDS_CONFIG, ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG,
      ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, ConsumerConfig.ISOLATION_LEVEL_CONFIG,
      ProducerConfig.ACKS_CONFIG, ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG,
      ProducerConfig.MAX_REQUEST_SIZE_CONFIG, ProducerConfig.TRANSACTIONAL_ID_CONFIG);

  /** Keys a share consumer refuses outright (Kafka's ShareConsumerConfig list). */
  private static final Set<String> NOT_FOR_SHARE_CONSUMERS = Set.of(
      ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG,
      ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, ConsumerConfig.ISOLATION_LEVEL_CONFIG,
      ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, ConsumerConfig.INTERCEPTOR_CLASSES_CONFIG,
      ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG,
      ConsumerConfig.GROUP_PROTOCOL_CONFIG, ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG);

  /** Producer memory for records not yet sent; a send blocks (backpressure) when it is full. */
  static final long PRODUCER_BUFFER_BYTES = 64L << 20;

  public KafkaSettings {
    Objects.requireNonNull(bootstrapServers, "bootstrapServers");
    Objects.requireNonNull(extra, "extra");
    checkBootstrap(bootstrapServers);
    for (String key : extra.keySet()) {
      if (OWNED_KEYS.contains(key)) {
        throw new BadInputException("--kafka-config may not set " + key
            + (key.equals(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG) ? " (use --kafka)" : " (zcow sets it)"));
      }
    }
    extra = Map.copyOf(extra);
    if (callTimeout == null || callTimeout.isNegative() || callTimeout.isZero()) {
      throw new IllegalArgumentException("callTimeout must be positive: " + callTimeout);
    }
    Objects.requireNonNull(auth, "auth");
  }

  /** Settings without record authentication. */
  public KafkaSettings(String bootstrapServers, Map<String, String> extra, java.time.Duration callTimeout) {
    this(bootstrapServers, extra, callTimeout, RecordAuth.NONE);
  }

  public KafkaSettings withCallTimeout(java.time.Duration timeout) {
    return new KafkaSettings(bootstrapServers, extra, timeout, auth);
  }

  /** The same settings with records signed and checked under {@code recordAuth}. */
  public KafkaSettings withAuth(RecordAuth recordAuth) {
    return new KafkaSettings(bootstrapServers, extra, callTimeout, recordAuth);
  }

  /** Settings without extra client properties. */
  public static KafkaSettings of(String bootstrapServers) {
    return new KafkaSettings(bootstrapServers, Map.of(), DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Settings with the client properties of {@code configFile} (Java properties format), or none
   * when it is null.
   *
   * @throws BadInputException when the file is missing or unreadable, or sets a key zcow owns
   */
  public static KafkaSettings of(String bootstrapServers, Path configFile) {
    return new KafkaSettings(bootstrapServers, configFile == null ? Map.of() : load(configFile), DEFAULT_CALL_TIMEOUT);
  }

  private static Map<String, String> load(Path file) {
    Properties p = new Properties();
    try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      p.load(r);
    } catch (NoSuchFileException e) {
      throw new BadInputException("--kafka-config file " + file + " does not exist");
    } catch (IOException | IllegalArgumentException e) {
      throw new BadInputException("--kafka-config file " + file + " cannot be read: " + e.getMessage(), e);
    }
    Map<String, String> m = new TreeMap<>();
    for (String k : p.stringPropertyNames()) {
      m.put(k.trim(), p.getProperty(k).trim());
    }
    return m;
  }

  private static void checkBootstrap(String servers) {
    if (servers.isBlank()) {
      throw new BadInputException("--kafka must name at least one HOST:PORT");
    }
    for (String s : servers.split(",")) {
      String hp = s.trim();
      int colon = hp.lastIndexOf(':');
      if (colon <= 0 || colon == hp.length() - 1) {
        throw new BadInputException("--kafka must be HOST:PORT[,HOST:PORT...]: " + servers);
      }
      int port;
      try {
        port = Integer.parseInt(hp.substring(colon + 1));
      } catch (NumberFormatException e) {
        throw new BadInputException("--kafka has a port that is not a number: " + hp);
      }
      if (port < 1 || port > 65535) {
        throw new BadInputException("--kafka has a port outside 1-65535: " + hp);
      }
    }
  }

  private Properties base(String clientId) {
    Properties p = new Properties();
    p.putAll(extra);
    p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
    p.putIfAbsent(CommonClientConfigs.CLIENT_ID_CONFIG, clientId);
    p.putIfAbsent(CommonClientConfigs.SEND_BUFFER_CONFIG, "-1");
    p.putIfAbsent(CommonClientConfigs.RECEIVE_BUFFER_CONFIG, "-1");
    return p;
  }

  /**
   * For an Admin client: every call gives up after {@link #callTimeout()}, so an unreachable
   * cluster is reported instead of waited for.
   */
  public Properties admin(String clientId) {
    Properties p = base(clientId);
    p.remove(CommonClientConfigs.SEND_BUFFER_CONFIG);
    p.remove(CommonClientConfigs.RECEIVE_BUFFER_CONFIG);
    int timeoutMs = (int) Math.min(Integer.MAX_VALUE, callTimeout.toMillis());
    p.putIfAbsent(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Integer.toString(timeoutMs));
    p.putIfAbsent(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Integer.toString(timeoutMs));
    p.keySet().retainAll(AdminClientConfig.configNames());
    return p;
  }

  /**
   * For the producer of chunks and events (String keys, byte[] values): acks=all with idempotence,
   * so the records of one key stay in order and a retried send is not duplicated; no compression
   * (payloads are compressed already); requests and batches sized by {@link ChunkLimits} so a raw
   * cluster of the largest size fits.
   */
  public Properties producer(String clientId) {
    Properties p = base(clientId);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(ChunkLimits.topicMaxMessageBytes()));
    p.putIfAbsent(ProducerConfig.BATCH_SIZE_CONFIG, Integer.toString(ChunkLimits.producerBatchBytes()));
    p.putIfAbsent(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
    p.putIfAbsent(ProducerConfig.LINGER_MS_CONFIG, "5");
    p.putIfAbsent(ProducerConfig.BUFFER_MEMORY_CONFIG, Long.toString(PRODUCER_BUFFER_BYTES));
    p.keySet().retainAll(ProducerConfig.configNames());
    return p;
  }

  /**
   * For a share consumer of tasks: explicit acknowledgement (a task is accepted only when the
   * worker says so, never by the next poll), one record per poll and no prefetch
   * ({@code share.acquire.mode=record_limit}), so a worker thread holds one task at a time and
   * other workers get the rest.
   */
  public Properties shareConsumer(String groupId, String clientId) {
    Properties p = base(clientId);
    p.keySet().removeAll(NOT_FOR_SHARE_CONSUMERS);
    p.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.SHARE_ACKNOWLEDGEMENT_MODE_CONFIG, "explicit");
    p.put(ConsumerConfig.SHARE_ACQUIRE_MODE_CONFIG, "record_limit");
    p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "1");
    p.keySet().retainAll(ConsumerConfig.configNames());
    return p;
  }

  /**
   * For a consumer that reads partitions by {@code assign} (no group, nothing committed), from
   * the earliest offset: how roles read the compacted jobs topic.
   */
  public Properties assignedConsumer(String clientId) {
    Properties p = base(clientId);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.keySet().retainAll(ConsumerConfig.configNames());
    return p;
  }

  /**
   * For a consumer of a chunks topic (the writer's): {@code assign} + {@code seek}, no offset
   * reset (a checkpoint says where to start; a missing offset is an error, not a reason to skip
   * data), fetch sizes that take several records of {@link ChunkLimits#topicMaxMessageBytes()},
   * and {@code check.crcs=false}: every entry carries its own checksum over its kind, cluster,
   * count and payload ({@link io.zcow.proto.EntryChecksum}), checked by the writer, so Kafka's
   * second pass over the bytes is pure cost.
   */
  public Properties chunkConsumer(String clientId) {
    Properties p = assignedConsumer(clientId);
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
    p.putIfAbsent(ConsumerConfig.CHECK_CRCS_CONFIG, "false");
    p.putIfAbsent(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Integer.toString(4 * ChunkLimits.topicMaxMessageBytes()));
    p.putIfAbsent(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, Integer.toString(64 << 20));
    return p;
  }
}
