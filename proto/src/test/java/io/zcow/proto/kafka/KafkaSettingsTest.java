package io.zcow.proto.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KafkaSettingsTest {
  @TempDir Path dir;

  @Test
  void shareConsumerTakesOneTaskAtATimeWithExplicitAcknowledgement() {
    Properties p = KafkaSettings.of("h1:9092,h2:9093").shareConsumer("g", "c");
    assertEquals("explicit", p.get("share.acknowledgement.mode"));
    assertEquals("record_limit", p.get("share.acquire.mode"));
    assertEquals("1", p.get("max.poll.records"));
    assertEquals("g", p.get("group.id"));
    assertEquals("-1", p.get("receive.buffer.bytes"));
  }

  @Test
  void producerFitsARawClusterOfTheLargestSize() {
    Properties p = KafkaSettings.of("h:1").producer("c");
    assertTrue(Integer.parseInt((String) p.get("max.request.size")) >= (2 << 20) + 1024);
    assertEquals("all", p.get("acks"));
    assertEquals("true", p.get("enable.idempotence"));
    assertEquals("none", p.get("compression.type"));
    assertEquals(Integer.toString(ChunkLimits.producerBatchBytes()), p.get("batch.size"));
    assertTrue(ChunkLimits.recordBytes(64 << 10) <= ChunkLimits.producerBatchBytes());
    assertTrue(ChunkLimits.recordBytes(2 << 20) == ChunkLimits.topicMaxMessageBytes());
  }

  @Test
  void fileAddsClientPropertiesToEveryClientButShareConsumersDropWhatTheyRefuse() throws Exception {
    Path f = dir.resolve("client.properties");
    Files.writeString(f, "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsession.timeout.ms=10000\n");
    KafkaSettings s = KafkaSettings.of("h:9092", f);
    assertEquals("SASL_SSL", s.producer("c").get("security.protocol"));
    assertEquals("PLAIN", s.admin("c").get("sasl.mechanism"));
    assertEquals("SASL_SSL", s.shareConsumer("g", "c").get("security.protocol"));
    assertFalse(s.shareConsumer("g", "c").containsKey("session.timeout.ms"));
    assertEquals("false", s.chunkConsumer("c").get("check.crcs"));
    assertEquals("none", s.chunkConsumer("c").get("auto.offset.reset"));
  }

  @Test
  void refusesBadBootstrapAndKeysZcowOwns() throws Exception {
    assertThrows(BadInputException.class, () -> KafkaSettings.of(""));
    assertThrows(BadInputException.class, () -> KafkaSettings.of("host"));
    assertThrows(BadInputException.class, () -> KafkaSettings.of("host:port"));
    assertThrows(BadInputException.class, () -> KafkaSettings.of("host:0"));
    Path f = dir.resolve("bad.properties");
    Files.writeString(f, "share.acknowledgement.mode=implicit\n");
    BadInputException e = assertThrows(BadInputException.class, () -> KafkaSettings.of("h:1", f));
    assertTrue(e.getMessage().contains("share.acknowledgement.mode"), e.getMessage());
    assertThrows(BadInputException.class, () -> KafkaSettings.of("h:1", dir.resolve("missing")));
  }
}
