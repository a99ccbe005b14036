package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.proto.kafka.KafkaSettings;
import java.nio.file.Path;
import java.time.Duration;
import picocli.CommandLine.Option;

/** The options of a command that only talks to Kafka: where, with what client settings, how patiently. */
final class KafkaOptions {
  @Option(names = "--kafka", paramLabel = "HOST:PORT[,...]", required = true, description = "The Kafka cluster of the jobs.")
  String kafka;

  @Option(names = "--kafka-config", paramLabel = "FILE", description = "Kafka client properties (TLS, SASL).")
  Path kafkaConfig;

  @Option(names = "--connect-timeout", paramLabel = "SECONDS", description = "Give up on an unreachable --kafka after this long (default: ${DEFAULT-VALUE}).")
  int connectTimeout = 15;

  KafkaSettings settings() {
    if (connectTimeout < 1 || connectTimeout > 3600) {
      throw new BadInputException("--connect-timeout must be 1 to 3600 seconds: " + connectTimeout);
    }
    KafkaSettings s = kafkaConfig == null ? KafkaSettings.of(kafka) : KafkaSettings.of(kafka, kafkaConfig);
    return s.withCallTimeout(Duration.ofSeconds(connectTimeout));
  }
}
