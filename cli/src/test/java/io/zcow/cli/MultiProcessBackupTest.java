package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.zcow.cli.faults.LoopbackCluster;
import io.zcow.cli.faults.Role;
import io.zcow.testkit.Disks;
import io.zcow.testkit.NbdServer;
import io.zcow.testkit.QemuImg;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The distributed path as it is deployed: a broker, ZooKeeper, a writer, two workers and the
 * backup command each in a JVM of its own ({@link LoopbackCluster}), talking only through Kafka
 * and ZooKeeper.
 *
 * <p>The faults (a killed coordinator resumed with the same --job-id, killed workers and writers,
 * a stopped leader, restarted broker and ZooKeeper) are the fault suite's ({@link
 * io.zcow.cli.faults.FaultSuiteTest}).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class MultiProcessBackupTest {
  private static final long SOURCE_SIZE = 24L << 20;
  private static final long RANGE_SIZE = 4L << 20;
  private static final int RANGES = (int) ((SOURCE_SIZE + RANGE_SIZE - 1) / RANGE_SIZE);
  private static final Pattern SUMMARY =
      Pattern.compile("(?m)job \\S+: \\d+ ranges?, (\\d+) hole ranges?, (\\d+) tasks? issued");

  @TempDir
  static Path dir;

  private LoopbackCluster cluster;

  @BeforeAll
  void startCluster() throws Exception {
    QemuImg.assumeAvailable();
    cluster = LoopbackCluster.start(dir);
    cluster.startWriter("writer");
    for (int i = 1; i <= 2; i++) {
      // 1 MB/s each: a 4 MiB range takes about 4 s, the whole job about 12 s.
      cluster.startWorker("worker-" + i, "--max-read-rate", "1");
    }
  }

  @AfterAll
  void stopCluster() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void backupThroughSeparateProcessesIsIdenticalToTheSource() throws Exception {
    Path source = Disks.mixed(dir.resolve("source-a.raw"), SOURCE_SIZE, 11);
    Role backup = cluster.startBackup("backup-a", cluster.backupArgs(source, "image.qcow2", "mp-a"));
    assertEquals(Main.EXIT_OK, backup.await(Duration.ofSeconds(120)), backup.describe());
    Path image = cluster.targetRoot().resolve("image.qcow2");
    QemuImg.assertClean(image);
    QemuImg.assertIdentical(source, image);
    int[] summary = summary(backup);
    assertEquals(RANGES, summary[0] + summary[1], "every range issued or a hole: " + backup.describe());
  }

  /** A source no worker host has as a file: every worker reads it over TCP from one qemu-nbd export. */
  @Test
  void backupOfAnNbdExportReadByWorkerProcessesOverTcpIsIdentical() throws Exception {
    Path raw = Disks.mixed(dir.resolve("source-nbd.raw"), SOURCE_SIZE, 12);
    try (NbdServer server = NbdServer.qemuNbd(raw, "raw").shared(8).start()) {
      // The cluster's other workers may not read network sources: they hand the tasks back.
      List<Role> nbdWorkers = new ArrayList<>();
      for (int i = 1; i <= 2; i++) {
        nbdWorkers.add(cluster.startWorker("nbd-worker-" + i, "--source-allow", server.uri()));
      }
      try {
        List<String> args = cluster.backupArgs(raw, "nbd-image.qcow2", "mp-nbd");
        args.set(args.size() - 2, server.uri());
        Role backup = cluster.startBackup("backup-nbd", args);
        assertEquals(Main.EXIT_OK, backup.await(Duration.ofSeconds(120)), backup.describe());
      } finally {
        nbdWorkers.forEach(Role::kill);
      }
    }
    Path image = cluster.targetRoot().resolve("nbd-image.qcow2");
    QemuImg.assertClean(image);
    QemuImg.assertIdentical(raw, image);
  }

  /**
   * {@code backup --kafka --incremental PREV --bitmap NAME}: the scenario of {@link
   * IncrementalChain} with every role a process; TARGET and PREV relative to the writer's target
   * root, the export on one Unix socket read by two workers allowed to read it.
   */
  @Test
  void incrementalChainThroughSeparateProcessesReadsAsTheGuestAtEachTime() throws Exception {
    Path work = java.nio.file.Files.createDirectories(dir.resolve("incremental"));
    Path socket = work.resolve("guest.sock");
    String uri = "nbd+unix:///disk?socket=" + socket;
    List<Role> nbdWorkers = new ArrayList<>();
    for (int i = 1; i <= 2; i++) {
      nbdWorkers.add(cluster.startWorker("inc-worker-" + i, "--source-allow", uri));
    }
    Path root = cluster.targetRoot();
    try {
      IncrementalChain.fullThenTwoIncrementals(work, root, b -> b.unix(socket), (s, target, previous, bitmap, extra) -> {
        String name = target.getFileName().toString().replace(".qcow2", "");
        List<String> more = new ArrayList<>();
        if (previous != null) {
          more.addAll(List.of("--incremental", root.relativize(previous).toString(), "--bitmap", bitmap));
        }
        List<String> args = cluster.backupArgs(Path.of("SOURCE"), root.relativize(target).toString(), "mp-" + name,
            more.toArray(String[]::new));
        args.set(args.size() - 2, s.uri());
        Role backup = cluster.startBackup("backup-" + name, args);
        int code = backup.await(Duration.ofSeconds(120));
        return new CliRun(code, backup.describe());
      });
      // A PREV outside the writer's target root: the writer refuses it, the job fails with why, and
      // the submitter exits 2 as for input it refuses itself.
      try (NbdServer s = NbdServer.qemuNbd(work.resolve("guest.qcow2"), "qcow2").bitmap("b1").unix(socket).start()) {
        List<String> args = cluster.backupArgs(Path.of("SOURCE"), "escape.qcow2", "mp-escape", "--incremental",
            "../incremental/t2.raw", "--bitmap", "b1");
        args.set(args.size() - 2, s.uri());
        Role backup = cluster.startBackup("backup-escape", args);
        assertEquals(Main.EXIT_USAGE, backup.await(Duration.ofSeconds(120)), backup.describe());
        assertTrue(backup.stderr().contains("previous image ../incremental/t2.raw contains '..'"), backup.describe());
        // A PREV inside the root whose metadata qemu-img check calls corrupt: checked by the
        // writer off its term's thread, and the job fails with why.
        IncrementalChain.unsoundCopy(root.resolve("full.qcow2"), root.resolve("unsound.qcow2"));
        args = cluster.backupArgs(Path.of("SOURCE"), "on-unsound.qcow2", "mp-unsound", "--incremental",
            "unsound.qcow2", "--bitmap", "b1");
        args.set(args.size() - 2, s.uri());
        backup = cluster.startBackup("backup-unsound", args);
        assertEquals(Main.EXIT_USAGE, backup.await(Duration.ofSeconds(120)), backup.describe());
        assertTrue(backup.stderr().contains("previous image") && backup.stderr().contains("is not check-clean"),
            backup.describe());
        assertFalse(java.nio.file.Files.exists(root.resolve("on-unsound.qcow2")), "nothing written");
      }
      // By digest (no bitmap): the writer hands each task its range's digests from inc2's manifest,
      // workers send only the cluster that changed since; a PREV without a manifest is refused.
      Path guest = work.resolve("guest.qcow2");
      QemuImg.io(guest, "write -P 0x66 3M 64k");
      Path t3 = IncrementalChain.snapshot(guest, work, "t3.raw");
      try (NbdServer s = NbdServer.qemuNbd(guest, "qcow2").unix(socket).start()) {
        List<String> args = cluster.backupArgs(Path.of("SOURCE"), "inc3.qcow2", "mp-inc3", "--incremental",
            "inc2.qcow2");
        args.set(args.size() - 2, s.uri());
        Role backup = cluster.startBackup("backup-inc3", args);
        assertEquals(0, backup.await(Duration.ofSeconds(120)), backup.describe());
        QemuImg.assertOverlay(t3, root.resolve("inc3.qcow2"), IncrementalChain.CS, java.util.Set.of(48L));
        java.nio.file.Files.copy(root.resolve("full.qcow2"), root.resolve("bare.qcow2"));
        args = cluster.backupArgs(Path.of("SOURCE"), "on-bare.qcow2", "mp-bare", "--incremental", "bare.qcow2");
        args.set(args.size() - 2, s.uri());
        backup = cluster.startBackup("backup-bare", args);
        assertEquals(Main.EXIT_USAGE, backup.await(Duration.ofSeconds(120)), backup.describe());
        assertTrue(backup.stderr().contains("has no digest manifest"), backup.describe());
        assertFalse(java.nio.file.Files.exists(root.resolve("on-bare.qcow2")), "nothing written");
      }
    } finally {
      nbdWorkers.forEach(Role::kill);
    }
  }

  private static int[] summary(Role run) {
    Matcher m = SUMMARY.matcher(run.stderr());
    if (!m.find()) {
      fail("no summary line: " + run.describe());
    }
    System.out.println(run.name() + ": " + m.group());
    return new int[] {Integer.parseInt(m.group(2)), Integer.parseInt(m.group(1))};
  }
}
