package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The distributed path as it is deployed: a dev cluster, a writer, two workers and the backup
 * command each in a JVM of its own, talking only through Kafka and ZooKeeper.
 *
 * <p>The workers are throttled (--max-read-rate) so that a job lasts long enough to be interrupted
 * half-way: the second test kills the coordinator process mid-job and resumes it with the same
 * --job-id.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class MultiProcessBackupTest {
  private static final long SOURCE_SIZE = 24L << 20;
  private static final long RANGE_SIZE = 4L << 20;
  private static final int RANGES = (int) ((SOURCE_SIZE + RANGE_SIZE - 1) / RANGE_SIZE);
  private static final Pattern KAFKA = Pattern.compile("(?m)^kafka: (\\S+:\\d+)$");
  private static final Pattern ZOOKEEPER = Pattern.compile("(?m)^zookeeper: (\\S+:\\d+)$");
  private static final Pattern SUMMARY =
      Pattern.compile("(?m)job \\S+: (\\d+) tasks submitted, (\\d+) hole ranges");
  private static final Pattern PROGRESS = Pattern.compile("(?m)^backup: +(\\d+\\.\\d)%");

  @TempDir
  static Path dir;

  private final List<Process> cluster = new ArrayList<>();
  private final List<Child> roles = new ArrayList<>();
  private Path targetRoot;
  private Path logs;
  private String kafka;
  private String zookeeper;

  @BeforeAll
  void startCluster() throws Exception {
    QemuImg.assumeAvailable();
    CLUSTER_LOGS = this::clusterLogs;
    targetRoot = Files.createDirectories(dir.resolve("images"));
    logs = Files.createDirectories(dir.resolve("logs"));
    Child dev = start("dev-cluster", List.of("dev-cluster"));
    cluster.add(dev.process);
    String out = dev.awaitStdout(s -> KAFKA.matcher(s).find() && ZOOKEEPER.matcher(s).find(),
        Duration.ofSeconds(90));
    kafka = group(KAFKA, out);
    zookeeper = group(ZOOKEEPER, out);

    cluster.add(start("writer", List.of("writer", "--kafka", kafka, "--zookeeper", zookeeper,
        "--target-root", targetRoot.toString(), "--checkpoint-interval", "1s", "--cache-size", "32m")).process);
    for (int i = 1; i <= 2; i++) {
      // 1 MB/s each: a 4 MiB range takes about 4 s, the whole job about 12 s.
      cluster.add(start("worker-" + i, List.of("worker", "--kafka", kafka, "--threads", "1",
          "--max-read-rate", "1")).process);
    }
  }

  @AfterAll
  void stopCluster() {
    destroyAll(cluster);
  }

  @Test
  void backupThroughSeparateProcessesIsIdenticalToTheSource() throws Exception {
    Path source = Disks.mixed(dir.resolve("source-a.raw"), SOURCE_SIZE, 11);
    Child backup = start("backup-a", backupArgs(source, "image.qcow2", "mp-a"));
    try {
      int code = backup.await(Duration.ofSeconds(120));
      assertEquals(Main.EXIT_OK, code, backup.describe());
    } finally {
      destroyAll(List.of(backup.process));
    }
    Path image = targetRoot.resolve("image.qcow2");
    QemuImg.assertClean(image);
    QemuImg.assertIdentical(source, image);
    int[] summary = summary(backup);
    assertEquals(RANGES, summary[0] + summary[1], "every range submitted or a hole: " + backup.describe());
  }

  @Test
  void killedCoordinatorResumesWithTheSameJobIdAndSubmitsOnlyWhatIsLeft() throws Exception {
    Path source = Disks.mixed(dir.resolve("source-b.raw"), SOURCE_SIZE, 23);
    List<String> args = backupArgs(source, "resumed.qcow2", "mp-resume");
    args.add(args.size() - 2, "--window");
    args.add(args.size() - 2, "2");

    Child first = start("backup-b1", args);
    try {
      // Plain progress prints every 5 s: the first line with some progress is mid-job.
      first.awaitStderr(s -> {
        Matcher m = PROGRESS.matcher(s);
        while (m.find()) {
          if (Double.parseDouble(m.group(1)) > 0) {
            return true;
          }
        }
        return false;
      }, Duration.ofSeconds(90));
      assertTrue(first.process.isAlive(), "first run still running when killed: " + first.describe());
    } finally {
      destroyAll(List.of(first.process));
    }
    assertTrue(!Files.exists(targetRoot.resolve("resumed.qcow2")), "no image yet after the kill");
    // The ranges the killed coordinator had handed out still finish; give the writer a checkpoint.
    Thread.sleep(3000);

    Child second = start("backup-b2", args);
    try {
      int code = second.await(Duration.ofSeconds(120));
      assertEquals(Main.EXIT_OK, code, second.describe());
    } finally {
      destroyAll(List.of(second.process));
    }
    Path image = targetRoot.resolve("resumed.qcow2");
    QemuImg.assertClean(image);
    QemuImg.assertIdentical(source, image);
    int[] summary = summary(second);
    assertTrue(summary[0] < RANGES - summary[1],
        "the resumed run submits fewer tasks than a fresh one (" + (RANGES - summary[1]) + "): "
            + second.describe());
  }

  private List<String> backupArgs(Path source, String target, String jobId) {
    return new ArrayList<>(List.of("backup", "--kafka", kafka, "--zookeeper", zookeeper,
        "--job-id", jobId, "--range-size", "4m", "--progress", "plain", "--connect-timeout", "60",
        source.toString(), target));
  }

  private static int[] summary(Child run) throws IOException {
    Matcher m = SUMMARY.matcher(run.stderr());
    if (!m.find()) {
      fail("no summary line: " + run.describe());
    }
    System.out.println(run.name() + ": " + m.group());
    return new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))};
  }

  private static String group(Pattern p, String s) {
    Matcher m = p.matcher(s);
    assertTrue(m.find(), s);
    return m.group(1);
  }

  private Child start(String name, List<String> args) throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add(name.equals("dev-cluster") ? "-Xmx768m" : "-Xmx384m");
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add("io.zcow.cli.Main");
    cmd.addAll(args);
    Path out = logs.resolve(name + ".out");
    Path err = logs.resolve(name + ".err");
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile())
        .redirectInput(ProcessBuilder.Redirect.from(nullFile()));
    Child child = new Child(name, pb.start(), out, err);
    if (!name.startsWith("backup")) {
      roles.add(child);
    }
    return child;
  }

  private static java.io.File nullFile() {
    return new java.io.File(System.getProperty("os.name").startsWith("Windows") ? "NUL" : "/dev/null");
  }

  private static void destroyAll(List<Process> processes) {
    for (Process p : processes) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
    }
    for (Process p : processes) {
      try {
        p.waitFor(30, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /** The cluster roles' output, for failure messages. */
  private static java.util.function.Supplier<String> CLUSTER_LOGS = () -> "";

  private String clusterLogs() {
    StringBuilder b = new StringBuilder();
    for (Child c : roles) {
      if (!c.name.equals("dev-cluster")) {
        b.append(c.describe());
      }
    }
    return b.toString();
  }

  private record Child(String name, Process process, Path out, Path err) {
    String stdout() throws IOException {
      return Files.readString(out, StandardCharsets.UTF_8);
    }

    String stderr() throws IOException {
      return Files.readString(err, StandardCharsets.UTF_8);
    }

    String awaitStdout(Predicate<String> ready, Duration timeout) throws Exception {
      return awaitFile(out, ready, timeout);
    }

    String awaitStderr(Predicate<String> ready, Duration timeout) throws Exception {
      return awaitFile(err, ready, timeout);
    }

    private String awaitFile(Path file, Predicate<String> ready, Duration timeout) throws Exception {
      long deadline = System.nanoTime() + timeout.toNanos();
      while (System.nanoTime() < deadline) {
        String s = Files.readString(file, StandardCharsets.UTF_8);
        if (ready.test(s)) {
          return s;
        }
        if (!process.isAlive()) {
          fail(name + " exited with " + process.exitValue() + " before it was ready: " + describe());
        }
        Thread.sleep(100);
      }
      fail(name + " not ready within " + timeout + ": " + describe() + CLUSTER_LOGS.get());
      return null;
    }

    int await(Duration timeout) throws Exception {
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        fail(name + " still running after " + timeout + ": " + describe() + CLUSTER_LOGS.get());
      }
      return process.exitValue();
    }

    String describe() {
      try {
        return "\n--- " + name + " stdout:\n" + tail(stdout()) + "\n--- " + name + " stderr:\n" + tail(stderr());
      } catch (IOException e) {
        return name + ": " + e;
      }
    }

    private static String tail(String s) {
      return s.length() <= 6000 ? s : "..." + s.substring(s.length() - 6000);
    }
  }
}
