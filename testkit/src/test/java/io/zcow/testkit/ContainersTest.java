package io.zcow.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ContainersTest {

  @Test
  void brokerSettingsBecomeTheVariablesTheKafkaImageDecodes() {
    Map<String, String> config = new LinkedHashMap<>();
    config.put("message.max.bytes", "1");
    config.put("log.retention.check.interval.ms", "2");
    config.put("listener.name.internal.ssl_keystore-type", "3");
    assertEquals(
        Map.of(
            "KAFKA_MESSAGE_MAX_BYTES", "1",
            "KAFKA_LOG_RETENTION_CHECK_INTERVAL_MS", "2",
            "KAFKA_LISTENER_NAME_INTERNAL_SSL__KEYSTORE___TYPE", "3"),
        Containers.kafkaEnvironment(config));
  }
}
