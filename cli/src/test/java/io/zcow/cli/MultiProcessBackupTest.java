package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
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

  private static int[] summary(Role run) {
    Matcher m = SUMMARY.matcher(run.stderr());
    if (!m.find()) {
      fail("no summary line: " + run.describe());
    }
    System.out.println(run.name() + ": " + m.group());
    return new int[] {Integer.parseInt(m.group(2)), Integer.parseInt(m.group(1))};
  }
}
