package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import java.nio.file.Path;
import java.time.Duration;
import picocli.CommandLine.Option;

/** The options of a command that only talks to Kafka: where, with what client settings, how patiently. */
final class KafkaOptions {
  @Option(names = "--kafka", paramLabel = "HOST:PORT[,...]", required = true, description = "The Kafka cluster of the jobs.")
  String kafka;

  @Option(names = "--kafka-config", paramLabel = "FILE", description = "Kafka client properties (TLS, SASL).")
  Path kafkaConfig;

  @Option(names = "--auth-key-file", paramLabel = "FILE", description = "File holding the cluster's record key (at least 32 bytes, e.g. head -c 32 /dev/urandom): records are signed with it, and records without a valid MAC are refused. Every role of the cluster needs the same file.")
  Path authKeyFile;

  @Option(names = "--connect-timeout", paramLabel = "SECONDS", description = "Give up on an unreachable --kafka after this long (default: ${DEFAULT-VALUE}).")
  int connectTimeout = 15;

  KafkaSettings settings() {
    if (connectTimeout < 1 || connectTimeout > 3600) {
      throw new BadInputException("--connect-timeout must be 1 to 3600 seconds: " + connectTimeout);
    }
    KafkaSettings s = kafkaConfig == null ? KafkaSettings.of(kafka) : KafkaSettings.of(kafka, kafkaConfig);
    return s.withCallTimeout(Duration.ofSeconds(connectTimeout)).withAuth(RecordAuth.fromFile(authKeyFile));
  }
}
