package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import java.nio.file.Path;
import java.time.Duration;
import picocli.CommandLine.Option;

/**
 * How every command that talks to a Kafka cluster does it, whatever names the cluster: client
 * properties, the record key and how long an unreachable cluster is waited for. A mixin of
 * {@link KafkaOptions} (commands that need {@code --kafka}) and of {@code backup} (where it is optional).
 */
final class KafkaClientOptions {
  static final Duration MAX_CONNECT_TIMEOUT = Duration.ofHours(1);

  @Option(names = "--kafka-config", paramLabel = "FILE", description = "Kafka client properties (TLS, SASL, timeouts) for every Kafka client of this process.")
  Path kafkaConfig;

  @Option(names = "--auth-key-file", paramLabel = "FILE", description = "File holding the cluster's record key (at least 32 bytes, e.g. head -c 32 /dev/urandom): records are signed with it, and records without a valid MAC are refused. Every role of the cluster needs the same file.")
  Path authKeyFile;

  @Option(names = "--connect-timeout", paramLabel = "DURATION", defaultValue = "30s", description = "Give up on a cluster that does not answer within this (default: ${DEFAULT-VALUE}; 30 or 30s, 2m...).")
  Duration connectTimeout;

  /** The checked timeout: 1 s to 1 h. */
  Duration connectTimeout() {
    if (connectTimeout.compareTo(Duration.ofSeconds(1)) < 0 || connectTimeout.compareTo(MAX_CONNECT_TIMEOUT) > 0) {
      throw new BadInputException("--connect-timeout must be 1s to 1h: " + connectTimeout.toSeconds() + "s");
    }
    return connectTimeout;
  }

  /** The record key of {@code --auth-key-file}, or none. */
  RecordAuth auth() {
    return RecordAuth.fromFile(authKeyFile);
  }

  /** Client settings for the cluster at {@code bootstrap}, with the key {@code auth}. */
  KafkaSettings settings(String bootstrap, RecordAuth auth) {
    KafkaSettings s = kafkaConfig == null ? KafkaSettings.of(bootstrap) : KafkaSettings.of(bootstrap, kafkaConfig);
    return s.withCallTimeout(connectTimeout()).withAuth(auth);
  }
}
