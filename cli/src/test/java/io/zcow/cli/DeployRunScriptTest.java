package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * deploy/local/run.sh as a user runs it: a dev cluster, two writers sharing one target
 * directory, three workers and a backup, each a process of its own, and nothing left running
 * afterwards.
 */
class DeployRunScriptTest {
  private static final long SOURCE_SIZE = 24L << 20;

  @Test
  void runShBacksUpThroughSeparateRolesAndStopsThemAll(@TempDir Path dir) throws Exception {
    QemuImg.assumeAvailable();
    String classpath = System.getProperty("java.class.path");
    assumeFalse(classpath.contains(" "), "the class path has a space; run.sh's ZCOW is split on spaces");
    Path sources = Files.createDirectories(dir.resolve("sources"));
    Path source = Disks.mixed(sources.resolve("disk.raw"), SOURCE_SIZE, 31);
    Path work = dir.resolve("work");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();

    ProcessBuilder pb = new ProcessBuilder("bash", DeployFiles.deploy().resolve("local/run.sh").toString(),
        source.toString(), "disk.qcow2", "--range-size", "4m")
        .redirectErrorStream(true)
        .redirectOutput(dir.resolve("run.log").toFile());
    pb.environment().put("ZCOW", java + " -Xmx384m -XX:TieredStopAtLevel=1 -cp " + classpath + " io.zcow.cli.Main");
    pb.environment().put("WORK", work.toString());
    pb.environment().put("METRICS_BASE", Integer.toString(freePortBase(5)));
    // The test class path logs at warn; the variable (read by every command) brings zcow's info lines back.
    pb.environment().put(Main.ENV_LOG_LEVEL, "info");
    Process run = pb.start();

    // The roles run.sh started, seen while they run.
    Set<ProcessHandle> roles = new java.util.HashSet<>();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    while (run.isAlive() && System.nanoTime() < deadline) {
      run.descendants().filter(p -> p.info().command().orElse("").endsWith("java")).forEach(roles::add);
      run.waitFor(200, TimeUnit.MILLISECONDS);
    }
    String log = Files.exists(dir.resolve("run.log")) ? Files.readString(dir.resolve("run.log")) : "";
    if (run.isAlive()) {
      run.descendants().forEach(ProcessHandle::destroyForcibly);
      run.destroyForcibly();
      fail("run.sh did not finish within 90 s:\n" + log + logs(work));
    }
    assertEquals(0, run.exitValue(), log + logs(work));

    Path image = work.resolve("images/disk.qcow2");
    QemuImg.assertClean(image);
    QemuImg.assertIdentical(source, image);

    assertTrue(roles.size() >= 6, "dev cluster, 2 writers, 3 workers and the backup, each a JVM: saw " + roles.size());
    for (ProcessHandle p : roles) {
      assertTrue(p.onExit().isDone() || !p.isAlive() || waitGone(p), "still running after run.sh: " + p.info());
    }
    // The same roles as the manifests: two writers of one group, one of them the leader.
    String writers = Files.readString(work.resolve("logs/writer-1.err")) + Files.readString(work.resolve("logs/writer-2.err"));
    assertTrue(writers.contains("leader with epoch"), writers);
    for (int i = 1; i <= 3; i++) {
      String worker = Files.readString(work.resolve("logs/worker-" + i + ".err"));
      assertTrue(worker.contains("sources under [" + sources.toRealPath() + "]"), "worker-" + i + ": " + worker);
    }
    assertFalse(log.contains("did not come up"), log);
  }

  private static boolean waitGone(ProcessHandle p) {
    try {
      p.onExit().get(10, TimeUnit.SECONDS);
      return true;
    } catch (Exception e) {
      p.destroyForcibly();
      return false;
    }
  }

  /** A port P such that P+1..P+n are free now. */
  private static int freePortBase(int n) throws IOException {
    for (int attempt = 0; attempt < 100; attempt++) {
      int base = ThreadLocalRandom.current().nextInt(20_000, 60_000);
      List<ServerSocket> held = new ArrayList<>();
      try {
        for (int i = 1; i <= n; i++) {
          ServerSocket s = new ServerSocket();
          held.add(s);
          s.bind(new InetSocketAddress(base + i));
        }
        return base;
      } catch (IOException busy) {
        // try another base
      } finally {
        for (ServerSocket s : held) {
          s.close();
        }
      }
    }
    throw new IOException("no " + n + " free consecutive ports");
  }

  private static String logs(Path work) throws IOException {
    Path dir = work.resolve("logs");
    if (!Files.isDirectory(dir)) {
      return "";
    }
    try (var files = Files.list(dir)) {
      return files.sorted().map(f -> {
        try {
          List<String> lines = Files.readAllLines(f);
          return "\n--- " + f.getFileName() + "\n"
              + String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size()));
        } catch (IOException e) {
          return "\n--- " + f.getFileName() + ": " + e;
        }
      }).collect(Collectors.joining());
    }
  }
}
