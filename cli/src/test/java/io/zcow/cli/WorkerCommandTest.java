package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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

  /** zstd-jni unpacks its library into java.io.tmpdir: where it cannot, the worker stops at once. */
  @Test
  void aWorkerWhoseZstdCannotLoadStopsAtOnceWithOneLine() throws Exception {
    Path javaBin = Path.of(System.getProperty("java.home"), "bin", "java");
    Process p = new ProcessBuilder(javaBin.toString(), "-Djava.io.tmpdir=" + dir.resolve("missing"),
        "-cp", System.getProperty("java.class.path"), Main.class.getName(),
        "worker", "--kafka", "localhost:9", "--connect-timeout", "30", "--threads", "1",
        "--auth-key-file", ClusterKeys.file().toString())
        .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectErrorStream(false).start();
    String err = new String(p.getErrorStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS), "the worker stopped");
    assertEquals(1, p.exitValue(), err);
    assertTrue(err.contains("zcow: failed: zstd cannot load its native library"), err);
    assertTrue(err.contains(dir.resolve("missing") + ") must be writable and allow execution"), err);
    assertFalse(err.contains("cannot reach Kafka"), "checked before the cluster: " + err);
  }
}
