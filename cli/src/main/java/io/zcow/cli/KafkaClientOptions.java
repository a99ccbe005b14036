package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import java.nio.file.Path;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Option;

/**
 * How every command that talks to a Kafka cluster does it, whatever names the cluster: client
 * properties, the record key and how long an unreachable cluster is waited for. A mixin of
 * {@link KafkaOptions} (commands that need {@code --kafka}) and of {@code backup} (where it is optional).
 */
final class KafkaClientOptions {
  private static final Logger LOG = LoggerFactory.getLogger(KafkaClientOptions.class);
  static final Duration MAX_CONNECT_TIMEOUT = Duration.ofHours(1);

  @Option(names = "--kafka-config", paramLabel = "FILE", description = "Kafka client properties (TLS, SASL, timeouts) for every Kafka client of this process.")
  Path kafkaConfig;

  /** Where an operator may name the key file instead of {@code --auth-key-file} (a mounted Secret). */
  static final String ENV_AUTH_KEY_FILE = "ZCOW_AUTH_KEY_FILE";

  @Option(names = "--auth-key-file", paramLabel = "FILE", defaultValue = "${env:" + ENV_AUTH_KEY_FILE + "}",
      description = "File holding the cluster's record key (at least 32 bytes, e.g. head -c 32 /dev/urandom): records are signed with it, and records without a valid MAC are refused. Every role of the cluster needs the same file. Default: the file named by $" + ENV_AUTH_KEY_FILE + ". Cluster roles refuse to start without it unless --insecure is given.")
  Path authKeyFile;

  @Option(names = "--insecure", description = "Run without record authentication: anyone who can produce to the cluster's topics can make workers read any allowed source and write forged data into images. For a test cluster only.")
  boolean insecure;

  @Option(names = "--connect-timeout", paramLabel = "DURATION", defaultValue = "30s", description = "Give up on a cluster that does not answer within this (default: ${DEFAULT-VALUE}; 30 or 30s, 2m...).")
  Duration connectTimeout;

  /** The checked timeout: 1 s to 1 h. */
  Duration connectTimeout() {
    if (connectTimeout.compareTo(Duration.ofSeconds(1)) < 0 || connectTimeout.compareTo(MAX_CONNECT_TIMEOUT) > 0) {
      throw new BadInputException("--connect-timeout must be 1s to 1h: " + connectTimeout.toSeconds() + "s");
    }
    return connectTimeout;
  }

  /** The record key of {@code --auth-key-file}, or none (the embedded cluster then makes its own). */
  RecordAuth auth() {
    return RecordAuth.fromFile(authKeyFile);
  }

  /**
   * The key of a cluster role: {@code --auth-key-file}, or none only when {@code --insecure} says
   * so (logged as a warning).
   *
   * @throws BadInputException when neither or both are given
   */
  RecordAuth clusterAuth() {
    if (insecure && authKeyFile != null) {
      throw new BadInputException("--insecure and --auth-key-file exclude each other");
    }
    if (insecure) {
      LOG.warn("--insecure: records are neither signed nor checked; anyone who can produce to the cluster's"
          + " topics can forge tasks and chunks");
      return RecordAuth.NONE;
    }
    if (authKeyFile == null) {
      throw new BadInputException("a cluster role needs --auth-key-file FILE (the cluster's record key, or $"
          + ENV_AUTH_KEY_FILE + "), or --insecure to run without record authentication");
    }
    return auth();
  }

  /**
   * Registers {@code zcow_insecure} in {@code registry}: 1 when this role runs {@code --insecure},
   * so a dashboard or an alert sees a cluster left open.
   */
  void meterInsecure(io.micrometer.core.instrument.MeterRegistry registry) {
    io.micrometer.core.instrument.Gauge.builder("zcow.insecure", () -> insecure ? 1 : 0)
        .description("1 when this role runs with --insecure: records are neither signed nor checked")
        .register(registry);
  }

  /** Client settings for the cluster at {@code bootstrap}, with the key {@code auth}. */
  KafkaSettings settings(String bootstrap, RecordAuth auth) {
    KafkaSettings s = kafkaConfig == null ? KafkaSettings.of(bootstrap) : KafkaSettings.of(bootstrap, kafkaConfig);
    return s.withCallTimeout(connectTimeout()).withAuth(auth);
  }
}
