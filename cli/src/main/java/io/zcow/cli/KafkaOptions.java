package io.zcow.cli;

import io.zcow.proto.kafka.KafkaSettings;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The options of a command that needs a running Kafka cluster: where it is, and how to talk to it. */
final class KafkaOptions {
  @Option(names = "--kafka", paramLabel = "HOST:PORT[,...]", required = true, description = "Bootstrap servers of the zcow cluster's Kafka.")
  String kafka;

  @Mixin KafkaClientOptions client = new KafkaClientOptions();

  KafkaSettings settings() {
    return client.settings(kafka, client.clusterAuth());
  }
}
