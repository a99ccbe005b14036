package io.zcow.testkit;

import org.junit.jupiter.api.extension.ExtendWith;

/** The Kafka contract against the in-process broker every module's tests use. */
@ExtendWith(EmbeddedKafkaExtension.class)
class EmbeddedKafkaContractTest extends KafkaContract {

  @Override
  KafkaFixture kafka() {
    return EmbeddedKafka.shared();
  }
}
