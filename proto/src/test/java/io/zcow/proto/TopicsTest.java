package io.zcow.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class TopicsTest {
  @Test
  void chunksTopicIsPerWriterGroup() {
    assertEquals("zcow.chunks.default", Topics.chunks("default"));
    assertEquals("zcow.chunks.site-A_2", Topics.chunks("site-A_2"));
  }

  @Test
  void refusesGroupNamesKafkaWouldRefuse() {
    assertThrows(IllegalArgumentException.class, () -> Topics.chunks(""));
    assertThrows(IllegalArgumentException.class, () -> Topics.chunks(null));
    assertThrows(IllegalArgumentException.class, () -> Topics.chunks("a/b"));
    assertThrows(IllegalArgumentException.class, () -> Topics.chunks("x".repeat(240)));
  }
}
