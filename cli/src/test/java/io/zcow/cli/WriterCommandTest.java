package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WriterCommandTest {

  @Test
  void missingRequiredOptionsAreBadUsage() {
    CliRun run = CliRun.of("writer", "--kafka", "localhost:9092");
    assertEquals(Main.EXIT_USAGE, run.exitCode(), run.err());
    assertTrue(run.err().contains("--zookeeper") || run.err().contains("--target-root"), run.err());
  }

  @Test
  void aBadDurationIsBadInput(@TempDir Path dir) {
    CliRun run = CliRun.of("writer", "--kafka", "localhost:1", "--zookeeper", "localhost:2", "--target-root",
        dir.toString(), "--range-timeout", "soon");
    assertEquals(Main.EXIT_USAGE, run.exitCode(), run.err());
    assertTrue(run.err().contains("--range-timeout") && run.err().contains("'soon' is not a duration"), run.err());
  }

  @Test
  void aZeroZooKeeperSessionTimeoutIsBadInput(@TempDir Path dir) {
    CliRun run = CliRun.of("writer", "--kafka", "localhost:1", "--zookeeper", "localhost:2", "--target-root",
        dir.toString(), "--zookeeper-session-timeout", "0s");
    assertEquals(Main.EXIT_USAGE, run.exitCode(), run.err());
    assertTrue(run.err().contains("--zookeeper-session-timeout"), run.err());
  }

  @Test
  void aMissingTargetRootIsBadInput(@TempDir Path dir) {
    CliRun run = CliRun.of("writer", "--kafka", "localhost:1", "--zookeeper", "localhost:2", "--target-root",
        dir.resolve("nope").toString());
    assertEquals(Main.EXIT_USAGE, run.exitCode(), run.err());
    assertTrue(run.err().contains("is not a directory"), run.err());
  }

  @Test
  void durationsTakeTheUsualUnits() {
    assertEquals(Duration.ofSeconds(10), Converters.duration("10s"));
    assertEquals(Duration.ofMinutes(5), Converters.duration("5m"));
    assertEquals(Duration.ofMillis(500), Converters.duration("500ms"));
    assertEquals(Duration.ofHours(1), Converters.duration("1h"));
    assertEquals(Duration.ofSeconds(7), Converters.duration("7"));
  }
}
