package io.zcow.testkit;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(EmbeddedKafkaExtension.class)
class EmbeddedKafkaExtensionTest {

  private final EmbeddedKafka fromConstructor;

  EmbeddedKafkaExtensionTest(EmbeddedKafka kafka) {
    this.fromConstructor = kafka;
  }

  @Test
  void injectsTheOneBrokerOfTheJvm(EmbeddedKafka kafka, KafkaFixture fixture) {
    assertSame(EmbeddedKafka.shared(), kafka);
    assertSame(kafka, fixture);
    assertSame(kafka, fromConstructor);
    assertTrue(kafka.bootstrapServers().matches("localhost:\\d+"), kafka.bootstrapServers());
    System.out.printf("embedded Kafka started in %d ms%n", kafka.startupTime().toMillis());
  }

  @Test
  void uniqueNamesDifferAndRejectCharactersKafkaRefuses(EmbeddedKafka kafka) {
    assertNotEquals(kafka.uniqueName("tasks"), kafka.uniqueName("tasks"));
    assertTrue(kafka.uniqueName("zcow.chunks").startsWith("zcow.chunks-"));
    assertThrows(IllegalArgumentException.class, () -> kafka.uniqueName("job/1"));
  }
}
