package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code zcow worker}: bad options are exit 2 with one line; an unreachable cluster is exit 1 in bounded time. */
class WorkerCommandTest {
  @TempDir Path dir;

  private static void assertRefused(CliRun run, String expected) {
    assertEquals(2, run.exitCode(), run.err());
    String err = run.err().strip();
    assertEquals(1, err.lines().filter(l -> l.startsWith("zcow: ")).count(), "one line: " + err);
    assertTrue(err.contains(expected), "'" + expected + "' in: " + err);
  }

  @Test
  void refusesBadOptionValues() throws Exception {
    assertRefused(CliRun.of("worker"), "--kafka");
    assertRefused(CliRun.of("worker", "--kafka", "nohostport"), "HOST:PORT");
    assertRefused(CliRun.of("worker", "--kafka", "h:99999"), "1-65535");
    assertRefused(CliRun.of("worker", "--kafka", "h:9092", "--threads", "0"), "--threads");
    assertRefused(CliRun.of("worker", "--kafka", "h:9092", "--source-cache", "sometimes"), "--source-cache");
    assertRefused(CliRun.of("worker", "--kafka", "h:9092", "--max-read-rate", "-5"), "--max-read-rate");
    assertRefused(CliRun.of("worker", "--kafka", "h:9092", "--max-read-rate", "fast"), "fast");
    assertRefused(CliRun.of("worker", "--kafka", "h:9092", "--metrics-port", "70000"), "--metrics-port");
    assertRefused(CliRun.of("worker", "--kafka", "h:9092", "--source-allow", "relative/dir"), "absolute");
    assertRefused(CliRun.of("worker", "--kafka", "h:9092", "--kafka-config", dir.resolve("nope.properties").toString()),
        "does not exist");
    Path props = dir.resolve("client.properties");
    Files.writeString(props, "bootstrap.servers=elsewhere:9092\n");
    assertRefused(CliRun.of("worker", "--kafka", "h:9092", "--kafka-config", props.toString()), "use --kafka");
  }

  @Test
  void unreachableClusterFailsWithinTheConnectTimeout() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort(); // closed again: nothing listens there
    }
    long t0 = System.nanoTime();
    CliRun run = CliRun.of("worker", "--kafka", "localhost:" + port, "--connect-timeout", "2", "--threads", "1");
    double secs = (System.nanoTime() - t0) / 1e9;
    assertEquals(1, run.exitCode(), run.err());
    assertTrue(run.err().contains("zcow: failed: cannot reach Kafka at localhost:" + port + " within 2 s"), run.err());
    assertTrue(secs < 20, "took " + secs + " s");
  }
}
