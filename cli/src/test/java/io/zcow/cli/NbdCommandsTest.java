package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.zcow.cli.embedded.DevCluster;
import io.zcow.cli.embedded.HostPort;
import io.zcow.source.nbd.NbdOptions;
import io.zcow.source.nbd.NbdUri;
import io.zcow.testkit.Disks;
import io.zcow.testkit.MisbehavingNbdServer;
import io.zcow.testkit.NbdServer;
import io.zcow.testkit.QemuImg;
import io.zcow.testkit.TestData;
import io.zcow.worker.kafka.SourcePolicy;
import io.zcow.worker.kafka.Worker;
import io.zcow.worker.kafka.WorkerConfig;
import io.zcow.writer.Writer;
import io.zcow.writer.WriterConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code zcow convert}, {@code verify} and {@code backup} from NBD exports served by qemu-nbd and
 * nbdkit: the images compare identical to the exported disk and check clean; bad URIs and bad
 * servers are one line, the right exit code, and nothing at the target.
 */
class NbdCommandsTest {
  private static final int MIB = 1 << 20;
  private static final long SIZE = 40L * MIB + 512;

  @TempDir static Path shared;
  static Path raw;
  static Path qcow2;

  @TempDir Path dir;

  @BeforeAll
  static void disk() {
    QemuImg.assumeAvailable();
    raw = TestData.sparse(shared.resolve("disk.raw"), SIZE);
    TestData.write(raw, 3L * MIB, TestData.random(1, 2 * MIB));
    TestData.write(raw, 17L * MIB + 4096, TestData.compressible(2, 5 * MIB));
    TestData.write(raw, SIZE - 512, TestData.random(3, 512));
    qcow2 = shared.resolve("disk.qcow2");
    QemuImg.convert(raw, qcow2, "zlib", 64 * 1024);
  }

  private void assertNothingBut(Path... expected) throws Exception {
    try (var s = Files.list(dir)) {
      assertEquals(List.of(expected).stream().sorted().toList(), s.sorted().toList());
    }
  }

  private static void assertOneLine(CliRun run, int exit, String expected) {
    assertEquals(exit, run.exitCode(), run.err());
    String err = run.err().strip();
    assertEquals(1, err.lines().count(), "one line: " + err);
    assertTrue(err.startsWith("zcow: ") && err.contains(expected), "'" + expected + "' in: " + err);
  }

  @Test
  void convertsAQcow2ExportOverTcpAndVerifiesIt() {
    Path out = dir.resolve("out.qcow2");
    try (NbdServer server = NbdServer.qemuNbd(qcow2, "qcow2").start()) {
      CliRun run = CliRun.of("convert", "--progress", "none", server.uri(), out.toString());
      assertEquals(0, run.exitCode(), run.err());
      QemuImg.assertIdentical(raw, out);
      QemuImg.assertClean(out);
      assertEquals(0, CliRun.of("verify", server.uri(), out.toString()).exitCode());
    }
  }

  @Test
  void convertsAnNbdkitExport() {
    Path out = dir.resolve("out.qcow2");
    try (NbdServer server = NbdServer.nbdkit(raw).start()) {
      CliRun run = CliRun.of("convert", "--progress", "none", server.uri(), out.toString());
      assertEquals(0, run.exitCode(), run.err());
      QemuImg.assertIdentical(raw, out);
      QemuImg.assertClean(out);
    }
  }

  @Test
  void backsUpAUnixSocketExportOnTheEmbeddedCluster() {
    Path out = dir.resolve("back.qcow2");
    try (NbdServer server = NbdServer.qemuNbd(qcow2, "qcow2").unix(dir.resolve("nbd.sock")).start()) {
      CliRun run = CliRun.of("backup", "--progress", "none", "--workers", "2", "--range-size", "8m",
          server.uri(), out.toString());
      assertEquals(0, run.exitCode(), run.err());
      QemuImg.assertIdentical(raw, out);
      QemuImg.assertClean(out);
    }
  }

  @Test
  void theResumeIdentityOfAnExportIsThatOfTheDiskItServes() {
    // The coordinator's SourceFingerprint (size and sampled blocks) sees the same bytes over NBD.
    try (NbdServer server = NbdServer.qemuNbd(qcow2, "qcow2").start();
        io.zcow.source.Source nbd = io.zcow.source.Sources.open(server.uri(), io.zcow.source.SourceCache.AUTO,
            io.zcow.source.nbd.NbdOptions.defaults());
        io.zcow.source.Source file = io.zcow.source.Sources.open(raw.toString(), io.zcow.source.SourceCache.AUTO,
            io.zcow.source.nbd.NbdOptions.defaults())) {
      assertEquals(io.zcow.coordinator.SourceFingerprint.of(file), io.zcow.coordinator.SourceFingerprint.of(nbd));
    }
  }

  @Test
  void badUrisAndUnknownExportsAreBadInputWithNothingAtTheTarget() throws Exception {
    Path out = dir.resolve("o.qcow2");
    assertOneLine(CliRun.of("convert", "nbd:///disk", out.toString()), 2, "names no host");
    assertOneLine(CliRun.of("backup", "nbd+unix:///disk", out.toString()), 2, "has no socket");
    assertOneLine(CliRun.of("convert", "nbds+unix:///d?socket=/s", out.toString()), 2, "not supported");
    assertOneLine(CliRun.of("convert", "nbd://127.0.0.1:" + NbdServer.freePort() + "/disk", out.toString()), 2,
        "Connection refused");
    try (NbdServer server = NbdServer.qemuNbd(qcow2, "qcow2").start()) {
      assertOneLine(CliRun.of("backup", "nbd://127.0.0.1:" + server.port() + "/nosuch", out.toString()), 2,
          "no such export");
    }
    assertNothingBut();
  }

  @Test
  void aServerFailingMidConvertFailsTheJobWithNothingAtTheTarget() throws Exception {
    Path out = dir.resolve("o.qcow2");
    try (MisbehavingNbdServer server = MisbehavingNbdServer.start(SIZE, MisbehavingNbdServer.Fault.CLOSE_MID_READ,
        1_000_000)) {
      CliRun run = CliRun.of("convert", "--progress", "none", "--nbd-timeout", "5", server.uri(), out.toString());
      assertOneLine(run, 1, "127.0.0.1:" + server.port());
    }
    assertNothingBut();
  }

  @Test
  @Timeout(180)
  void aServerGoneForGoodMidBackupFailsTheJobWithItsAddressAndNothingAtTheTarget() throws Exception {
    Path src = Disks.random(dir.resolve("gone.raw"), 16 * MIB, 15);
    Path root = Files.createDirectory(dir.resolve("root"));
    NbdServer server = NbdServer.qemuNbd(src, "raw").start();
    try (DevCluster cluster = DevCluster.start(HostPort.loopbackAnyPort(), HostPort.loopbackAnyPort(), null)) {
      String kafka = cluster.broker().bootstrapServers();
      // The production clocks (5 min range timeout, 2 min start timeout) and 2 counted re-issues
      // (1 s and 2 s pauses): the job fails because workers report each attempt failed, not
      // because a timer ran out.
      WriterConfig wc = WriterConfig.builder(kafka, cluster.zooKeeper().connectString(), root).auth(ClusterKeys.auth())
          .maxRequeues(2).build();
      SimpleMeterRegistry meters = new SimpleMeterRegistry();
      // Throttled (2 MiB ranges at 4 MB/s): the server is killed while ranges are left to read.
      WorkerConfig workers = WorkerConfig.builder(ClusterKeys.settings(kafka)).threads(1)
          .maxReadBytesPerSecond(4e6).releaseBackoff(Duration.ofMillis(100))
          .sources(SourcePolicy.allowAllAnd(List.of(NbdUri.parse(server.uri()))))
          .nbd(NbdOptions.defaults().withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(2), Duration.ofSeconds(5)))
          .build();
      try (Writer writer = new Writer(wc, Clock.systemUTC()).start();
          Worker worker = new Worker(workers, meters, Clock.systemUTC())) {
        worker.start();
        Thread killer = new Thread(() -> {
          while (meters.find("zcow.worker.tasks").tag("outcome", "done").counters().stream()
              .mapToDouble(c -> c.count()).sum() < 1) {
            try {
              Thread.sleep(20);
            } catch (InterruptedException e) {
              return;
            }
          }
          server.close(); // gone for good: not restarted
        }, "nbd-killer");
        killer.start();
        CliRun run = CliRun.of("backup", "--kafka", kafka, "--range-size", "2m", "--progress", "plain",
            "--job-id", "gone-1", server.uri(), "gone.qcow2");
        killer.interrupt();
        killer.join();
        assertEquals(Main.EXIT_FAILED, run.exitCode(), run.err());
        // The job's end as the backup command reports it: the writer's FAILED reason, in one line.
        String failed = run.err().lines().filter(l -> l.startsWith("zcow: job gone-1 failed: ")).findFirst()
            .orElseThrow(() -> new AssertionError("no FAILED line in: " + run.err()));
        assertTrue(failed.contains("NBD export 'disk' at 127.0.0.1:" + server.port()), "the NBD address in: " + failed);
        assertTrue(failed.contains("failed on a worker"), "failed by the workers' reports in: " + failed);
      }
    } finally {
      server.close();
    }
    assertFalse(Files.exists(root.resolve("gone.qcow2")), "nothing at the target path");
  }
}
