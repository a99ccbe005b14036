package io.zcow.coordinator;

import io.zcow.BadInputException;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.AdminClientConfig;

/**
 * How the coordinator reaches Kafka: the bootstrap servers, the client properties of
 * {@code --kafka-config} (TLS, SASL...), and how long a call may wait for the cluster.
 *
 * @param bootstrapServers {@code host:port[,host:port...]}
 * @param clientProperties extra client settings, applied to every client; they may not set
 *     {@code bootstrap.servers} (that is {@code --kafka})
 * @param callTimeout the longest an admin call (and so an unreachable cluster) may take
 */
public record KafkaSettings(String bootstrapServers, Map<String, String> clientProperties, Duration callTimeout) {
  public static final Duration DEFAULT_CALL_TIMEOUT = Duration.ofSeconds(15);

  public KafkaSettings {
    if (bootstrapServers == null || bootstrapServers.isBlank()) {
      throw new BadInputException("--kafka needs HOST:PORT[,HOST:PORT...]");
    }
    clientProperties = Map.copyOf(clientProperties);
    if (clientProperties.containsKey(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG)) {
      throw new BadInputException("the Kafka client properties may not set bootstrap.servers: use --kafka");
    }
    if (callTimeout == null || callTimeout.isNegative() || callTimeout.isZero()) {
      throw new IllegalArgumentException("callTimeout must be positive: " + callTimeout);
    }
  }

  /** Plain connection to {@code bootstrapServers}, default timeout. */
  public static KafkaSettings of(String bootstrapServers) {
    return new KafkaSettings(bootstrapServers, Map.of(), DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Settings from the command line.
   *
   * @param kafkaConfig a Java properties file of client settings, or null
   * @throws BadInputException when the file is missing, unreadable or sets bootstrap.servers
   */
  public static KafkaSettings load(String bootstrapServers, Path kafkaConfig) {
    return new KafkaSettings(bootstrapServers, readProperties(kafkaConfig), DEFAULT_CALL_TIMEOUT);
  }

  public KafkaSettings withCallTimeout(Duration timeout) {
    return new KafkaSettings(bootstrapServers, clientProperties, timeout);
  }

  private static Map<String, String> readProperties(Path file) {
    if (file == null) {
      return Map.of();
    }
    Properties props = new Properties();
    try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      props.load(r);
    } catch (NoSuchFileException e) {
      throw new BadInputException("--kafka-config " + file + " does not exist");
    } catch (IOException | IllegalArgumentException e) {
      throw new BadInputException("--kafka-config " + file + " cannot be read: " + e.getMessage(), e);
    }
    Map<String, String> map = new TreeMap<>();
    props.stringPropertyNames().forEach(k -> map.put(k, props.getProperty(k)));
    return map;
  }

  /** Common client settings: the properties file first, then the bootstrap servers. */
  public Map<String, Object> clientProps() {
    Map<String, Object> props = new HashMap<>(clientProperties);
    props.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
    return props;
  }

  /**
   * Admin settings: every call gives up after {@link #callTimeout()}, so an unreachable cluster
   * is reported instead of waited for.
   */
  public Map<String, Object> adminProps() {
    Map<String, Object> props = clientProps();
    int timeoutMs = (int) Math.min(Integer.MAX_VALUE, callTimeout.toMillis());
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, timeoutMs);
    props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, timeoutMs);
    return props;
  }
}
