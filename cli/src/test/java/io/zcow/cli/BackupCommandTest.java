package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.zcow.cli.embedded.DevCluster;
import io.zcow.cli.embedded.HostPort;
import io.zcow.testkit.Disks;
import io.zcow.worker.kafka.Worker;
import io.zcow.worker.kafka.WorkerConfig;
import io.zcow.writer.Writer;
import io.zcow.writer.WriterConfig;
import java.time.Clock;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code zcow backup} on the embedded cluster of one: broker, ZooKeeper, writer and worker in this process. */
class BackupCommandTest {
  private static final long MIB = 1 << 20;

  @TempDir Path dir;

  @Test
  void backsUpMixedDiskOnEmbeddedClusterAndRemovesItsStorage() throws IOException {
    Path src = Disks.mixed(dir.resolve("mixed.raw"), 48 * MIB, 7);
    Path image = dir.resolve("mixed.qcow2");
    Set<String> before = embeddedDirs();

    CliRun run = CliRun.of("backup", "--workers", "2", "--window", "3", "--range-size", "4m", "--progress", "plain",
        src.toString(), image.toString());

    assertEquals(0, run.exitCode(), run.err());
    assertTrue(run.err().contains("wrote " + image), run.err());
    Matcher m = Pattern.compile("0 hole ranges, (\\d+) tasks? issued, at most (\\d+) ranges? in flight \\(window 3\\)")
        .matcher(run.err());
    assertTrue(m.find(), run.err());
    assertTrue(Integer.parseInt(m.group(1)) >= 12, "every range of 4 MiB holds data: " + m.group(0));
    assertTrue(Integer.parseInt(m.group(2)) <= 3, "never more than the window in flight: " + m.group(0));
    QemuImg.assertClean(image);
    QemuImg.assertIdentical(src, image);
    assertEquals(List.of("mixed.qcow2", "mixed.qcow2.digests", "mixed.raw"), listing(dir));
    Set<String> added = new java.util.TreeSet<>(embeddedDirs());
    added.removeAll(before); // other JVMs' brokers may come and go meanwhile
    assertEquals(Set.of(), added, "the embedded broker's and ZooKeeper's temporary storage is removed");
  }

  /** The last range ends at the source's size, inside a sector: workers must take it (they refused it once). */
  @Test
  @org.junit.jupiter.api.Timeout(180)
  void backsUpASourceWhoseSizeIsNoMultipleOf512() throws IOException {
    Path src = Disks.random(dir.resolve("odd.raw"), 5 * MIB + 333, 13);
    Path image = dir.resolve("odd.qcow2");

    CliRun run = CliRun.of("backup", "--workers", "2", "--range-size", "2m", "--progress", "plain",
        src.toString(), image.toString());

    assertEquals(0, run.exitCode(), run.err());
    QemuImg.assertClean(image);
    QemuImg.assertIdentical(src, image);
  }

  @Test
  void backsUpSparseDiskWhoseHoleRangesNoWorkerReads() throws IOException {
    Path src = Disks.sparse(dir.resolve("sparse.raw"), 40 * MIB, 3, 0, 9 * MIB + 512, 33 * MIB);
    Path image = dir.resolve("sparse.qcow2");

    CliRun run = CliRun.of("backup", "--workers", "2", "--range-size", "2m", "--cluster-size", "64k",
        "--progress", "plain", "--job-id", "sparse-1", src.toString(), image.toString());

    assertEquals(0, run.exitCode(), run.err());
    // 20 ranges of 2 MiB, data in ranges 0, 4 and 16 only.
    assertTrue(run.err().contains("job sparse-1: 20 ranges, 17 hole ranges, 3 tasks issued"), run.err());
    QemuImg.assertClean(image);
    QemuImg.assertIdentical(src, image);
    assertEquals(List.of("sparse.qcow2", "sparse.qcow2.digests", "sparse.raw"), listing(dir));
  }

  @Test
  void interruptedJobWithStateDirResumesAndSubmitsOnlyMissingRanges() throws Exception {
    Path src = Disks.random(dir.resolve("slow.raw"), 32 * MIB, 5);
    Path image = dir.resolve("slow.qcow2");
    Path state = Files.createDirectory(dir.resolve("state"));
    String[] args = {"backup", "--workers", "1", "--window", "1", "--range-size", "1m", "--level", "19",
        "--checkpoint-interval", "1s", "--progress", "plain", "--state-dir", state.toString(), "--job-id", "slow-1",
        src.toString(), image.toString()};
    // Random data is stored raw: the .part grows by about a range per MiB. Once a few ranges are
    // in, wait for one more checkpoint (1 s apart) so the committed state covers them.
    InterruptedBackup.after(args, dir.resolve("slow.qcow2.part"), 4 * MIB);

    CliRun resumed = CliRun.of(args);

    assertEquals(0, resumed.exitCode(), resumed.err());
    Matcher m = Pattern.compile("(\\d+) tasks? issued").matcher(resumed.err());
    assertTrue(m.find(), resumed.err());
    assertTrue(Integer.parseInt(m.group(1)) < 32, "only the missing ranges: " + m.group(0));
    QemuImg.assertClean(image);
    QemuImg.assertIdentical(src, image);
    assertFalse(Files.exists(dir.resolve("slow.qcow2.part")));
  }

  @Test
  void refusesBadInputBeforeStartingAnything() throws IOException {
    Path src = Disks.random(dir.resolve("src.raw"), MIB, 1);
    Path empty = Files.createFile(dir.resolve("empty.raw"));
    Path existing = Files.writeString(dir.resolve("existing.qcow2"), "keep me");
    Path target = dir.resolve("out.qcow2");
    Set<String> before = embeddedDirs();

    bad("does not exist", "backup", dir.resolve("missing.raw").toString(), target.toString());
    bad("--size is for --kafka", "backup", "--size", "1m", src.toString(), target.toString());
    bad("is a directory", "backup", dir.toString(), target.toString());
    bad("exists", "backup", src.toString(), existing.toString());
    bad("does not exist", "backup", src.toString(), dir.resolve("no/such/dir/out.qcow2").toString());
    bad("is empty", "backup", empty.toString(), target.toString());
    bad("--level", "backup", "--level", "99", src.toString(), target.toString());
    bad("--workers", "backup", "--workers", "0", src.toString(), target.toString());
    bad("--range-size", "backup", "--range-size", "100k", src.toString(), target.toString());
    bad("--progress", "backup", "--progress", "loud", src.toString(), target.toString());
    bad("--job-id", "backup", "--job-id", "a/b", src.toString(), target.toString());
    bad("--job-id: job id '..' is not", "backup", "--job-id", "..", src.toString(), target.toString());
    bad("--job-id: job id '.' is not", "backup", "--job-id", ".", src.toString(), target.toString());

    assertEquals("keep me", Files.readString(existing));
    assertEquals(List.of("empty.raw", "existing.qcow2", "src.raw"), listing(dir));
    assertEquals(before, embeddedDirs());
  }

  @Test
  void submitsToARunningClusterWithTargetRelativeToTheWritersRoot() throws Exception {
    Path src = Disks.mixed(dir.resolve("c.raw"), 12 * MIB, 11);
    Path root = Files.createDirectory(dir.resolve("root"));
    try (DevCluster cluster = DevCluster.start(HostPort.loopbackAnyPort(), HostPort.loopbackAnyPort(), null)) {
      String kafka = cluster.broker().bootstrapServers();
      String zk = cluster.zooKeeper().connectString();
      try (Writer writer = new Writer(WriterConfig.builder(kafka, zk, root).auth(ClusterKeys.auth()).build(), Clock.systemUTC()).start();
          Worker worker = new Worker(WorkerConfig.builder(ClusterKeys.settings(kafka)).threads(2).build(),
              new SimpleMeterRegistry(), Clock.systemUTC())) {
        worker.start();

        CliRun run = CliRun.of("backup", "--kafka", kafka, "--zookeeper", zk, "--range-size", "2m",
            "--progress", "plain", "--job-id", "cluster-1", src.toString(), "c.qcow2");

        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().contains("job cluster-1 done"), run.err());

        // A source only the workers see: the coordinator takes --size and never opens it.
        CliRun unseen = CliRun.of("backup", "--kafka", kafka, "--zookeeper", zk, "--range-size", "2m",
            "--progress", "plain", "--job-id", "cluster-2", "--size", Long.toString(Files.size(src)),
            src.toString(), "c2.qcow2");
        assertEquals(0, unseen.exitCode(), unseen.err());
        assertTrue(unseen.err().contains("6 tasks issued"), unseen.err());
      }
    }
    QemuImg.assertClean(root.resolve("c.qcow2"));
    QemuImg.assertIdentical(src, root.resolve("c.qcow2"));
    QemuImg.assertClean(root.resolve("c2.qcow2"));
    QemuImg.assertIdentical(src, root.resolve("c2.qcow2"));
  }

  @Test
  void unreachableKafkaFailsWithinTheConnectTimeout() throws IOException {
    Path src = Disks.random(dir.resolve("src.raw"), MIB, 1);
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    long start = System.nanoTime();

    CliRun run = CliRun.of("backup", "--kafka", "127.0.0.1:" + port, "--connect-timeout", "2", "--progress", "none",
        src.toString(), "out.qcow2");

    double secs = (System.nanoTime() - start) / 1e9;
    assertEquals(1, run.exitCode(), run.err());
    assertTrue(run.err().contains("not reachable"), run.err());
    assertTrue(secs < 20, "gave up after " + secs + " s");
    assertFalse(Files.exists(Path.of("out.qcow2")));
  }

  private static void bad(String reason, String... args) {
    CliRun run = CliRun.of(args);
    assertEquals(2, run.exitCode(), String.join(" ", args) + ": " + run.err());
    assertTrue(run.err().contains(reason), run.err());
    assertEquals(1, run.err().strip().lines().count(), run.err());
  }

  private static List<String> listing(Path d) throws IOException {
    try (Stream<Path> s = Files.list(d)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  /** Temporary directories of embedded brokers and ZooKeepers (Dirs.dataDir). */
  private static Set<String> embeddedDirs() throws IOException {
    Set<String> names = new TreeSet<>();
    Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
    List<String> globs = new ArrayList<>(List.of("zcow-kafka-*", "zcow-zookeeper-*"));
    for (String g : globs) {
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(tmp, g)) {
        ds.forEach(p -> names.add(p.getFileName().toString()));
      }
    }
    return names;
  }
}
