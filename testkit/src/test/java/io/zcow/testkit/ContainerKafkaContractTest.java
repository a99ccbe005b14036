package io.zcow.testkit;

import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.testcontainers.junit.jupiter.Container;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.kafka.KafkaContainer;

/**
 * The same Kafka contract against the released broker image (apache/kafka at kafka.version),
 * configured with {@link EmbeddedKafka#brokerConfig()}: proves the embedded broker behaves as a
 * real one. Skipped where there is no Docker.
 */
@Testcontainers(disabledWithoutDocker = true)
class ContainerKafkaContractTest extends KafkaContract {

  @Container
  static final KafkaContainer BROKER = new KafkaContainer(image()).withEnv(environment());

  private static ContainerKafka kafka;

  @BeforeAll
  static void connect() {
    kafka = new ContainerKafka(BROKER.getBootstrapServers());
  }

  @AfterAll
  static void disconnect() {
    if (kafka != null) {
      kafka.admin().close(Duration.ofSeconds(5));
    }
  }

  @Override
  KafkaFixture kafka() {
    return kafka;
  }

  private static String image() {
    Properties properties = new Properties();
    try (InputStream in = ContainerKafkaContractTest.class.getResourceAsStream("/kafka-image.properties")) {
      if (in == null) {
        throw new IllegalStateException("kafka-image.properties missing: build with Maven");
      }
      properties.load(in);
    } catch (IOException e) {
      throw new IllegalStateException("could not read kafka-image.properties", e);
    }
    return properties.getProperty("image");
  }

  /** The apache/kafka image turns KAFKA_FOO_BAR into the broker setting foo.bar. */
  private static Map<String, String> environment() {
    Map<String, String> env = new LinkedHashMap<>();
    EmbeddedKafka.brokerConfig()
        .forEach((key, value) -> env.put("KAFKA_" + key.toUpperCase(Locale.ROOT).replace('.', '_'), value));
    return env;
  }

  /** A {@link KafkaFixture} over a broker reached by address only. */
  private static final class ContainerKafka implements KafkaFixture {
    private final String bootstrapServers;
    private final Admin admin;

    ContainerKafka(String bootstrapServers) {
      this.bootstrapServers = bootstrapServers;
      this.admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers));
    }

    @Override
    public String bootstrapServers() {
      return bootstrapServers;
    }

    @Override
    public Admin admin() {
      return admin;
    }
  }
}
