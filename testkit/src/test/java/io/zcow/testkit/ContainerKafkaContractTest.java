package io.zcow.testkit;

import java.time.Duration;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.testcontainers.kafka.KafkaContainer;

/**
 * The same Kafka contract against a broker in its own container (the image of
 * deploy/images/build.sh, Kafka at kafka.version from Maven Central jars), configured with {@link
 * EmbeddedKafka#brokerConfig()}: proves the embedded broker behaves as a real one. Skipped where
 * there is no container engine or no image, failed instead under CI=true ({@link Containers}).
 */
class ContainerKafkaContractTest extends KafkaContract {

  private static KafkaContainer broker;
  private static ContainerKafka kafka;

  @BeforeAll
  static void start() {
    broker = Containers.kafka();
    broker.start();
    kafka = new ContainerKafka(broker.getBootstrapServers());
  }

  @AfterAll
  static void stop() {
    if (kafka != null) {
      kafka.admin().close(Duration.ofSeconds(5));
    }
    if (broker != null) {
      broker.stop();
    }
  }

  @Override
  KafkaFixture kafka() {
    return kafka;
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
