package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.testkit.Disks;
import io.zcow.testkit.NbdServer;
import io.zcow.testkit.QemuImg;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Cluster roles need a key or {@code --insecure}; the embedded backup makes and hands out its own. */
class SecureByDefaultTest {
  private static final long MIB = 1 << 20;

  @TempDir Path dir;

  private List<List<String>> roles(String kafka) throws Exception {
    Path src = Disks.random(dir.resolve("src.raw"), MIB, 1);
    return List.of(
        List.of("worker", "--kafka", kafka, "--connect-timeout", "1"),
        List.of("writer", "--kafka", kafka, "--zookeeper", kafka, "--target-root", dir.toString(),
            "--connect-timeout", "1", "--zookeeper-session-timeout", "1s"),
        List.of("status", "--kafka", kafka, "--connect-timeout", "1"),
        List.of("cancel", "--kafka", kafka, "--connect-timeout", "1", "job-1"),
        List.of("backup", "--kafka", kafka, "--zookeeper", kafka, "--connect-timeout", "1", src.toString(),
            "out.qcow2"));
  }

  private static CliRun with(List<String> role, String... options) {
    List<String> args = new ArrayList<>(role);
    args.addAll(1, Arrays.asList(options));
    return CliRun.exactly(Environment.system(), args.toArray(String[]::new));
  }

  @Test
  void everyClusterRoleRefusesToStartWithoutAKeyInOneLineNamingBothOptions() throws Exception {
    for (List<String> role : roles("127.0.0.1:" + NbdServer.freePort())) {
      CliRun run = with(role);
      assertEquals(Main.EXIT_USAGE, run.exitCode(), role + ": " + run.err());
      List<String> lines = run.err().strip().lines().toList();
      assertEquals(1, lines.size(), role + ": " + run.err());
      assertTrue(lines.get(0).startsWith("zcow: ") && lines.get(0).contains("--auth-key-file")
          && lines.get(0).contains("--insecure"), role + ": " + lines.get(0));
    }
  }

  @Test
  void everyClusterRoleStartsWithInsecureAndRefusesInsecureWithAKey() throws Exception {
    for (List<String> role : roles("127.0.0.1:" + NbdServer.freePort())) {
      CliRun both = with(role, "--insecure", "--auth-key-file", ClusterKeys.file().toString());
      assertEquals(Main.EXIT_USAGE, both.exitCode(), role + ": " + both.err());
      assertTrue(both.err().contains("exclude each other"), role + ": " + both.err());
      if (role.get(0).equals("writer")) {
        continue; // a writer waits for its cluster as a standby would: see below
      }
      CliRun run = with(role, "--insecure");
      // Nothing listens there: the role got past its options and failed on the cluster, not on the key.
      assertNotEquals(Main.EXIT_USAGE, run.exitCode(), role + ": " + run.err());
      assertFalse(run.err().contains("--auth-key-file"), role + ": " + run.err());
    }
    List<String> writer = new ArrayList<>(roles("127.0.0.1:" + NbdServer.freePort()).get(1));
    writer.add(1, "--insecure");
    Process p = new ProcessBuilder(java(writer)).redirectErrorStream(true).start();
    try {
      BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
      StringBuilder said = new StringBuilder();
      for (String line; (line = out.readLine()) != null && !line.startsWith("zcow writer: group"); ) {
        said.append(line).append('\n');
      }
      assertTrue(said.toString().contains("--insecure: records are neither signed nor checked"), said.toString());
      assertTrue(p.isAlive(), "the writer runs: " + said);
    } finally {
      p.destroyForcibly();
    }
  }

  private static List<String> java(List<String> zcowArgs) {
    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.log.io.zcow=info", "-cp", System.getProperty("java.class.path"), Main.class.getName()));
    cmd.addAll(zcowArgs);
    return cmd;
  }

  @Test
  void theEmbeddedBackupNeedsNoOptionAndAWorkerJoinsWithTheCommandItPrints() throws Exception {
    Path src = Disks.mixed(dir.resolve("disk.raw"), 64 * MIB, 5);
    Path image = dir.resolve("disk.qcow2");
    Path workerErr = dir.resolve("worker.err");
    Process backup = new ProcessBuilder(java(List.of("backup", "--listen", "127.0.0.1:" + NbdServer.freePort(),
        "--workers", "1", "--range-size", "2m", "--progress", "none", src.toString(), image.toString())))
        .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    Process worker = null;
    try {
      BufferedReader err = new BufferedReader(new InputStreamReader(backup.getErrorStream(), StandardCharsets.UTF_8));
      String join = null;
      StringBuilder said = new StringBuilder();
      for (String line; join == null && (line = err.readLine()) != null; ) {
        said.append(line).append('\n');
        int at = line.indexOf("zcow worker ");
        join = at < 0 ? null : line.substring(at);
      }
      assertNotNull(join, "the backup prints how to join: " + said);
      List<String> words = List.of(join.split(" "));
      Path keyFile = Path.of(words.get(words.indexOf("--auth-key-file") + 1));
      assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(keyFile)));
      assertTrue(words.contains("--source-allow"), join);
      worker = new ProcessBuilder(java(words.subList(1, words.size()))).redirectErrorStream(true)
          .redirectOutput(workerErr.toFile()).start();
      err.transferTo(java.io.Writer.nullWriter());
      assertTrue(backup.waitFor(120, TimeUnit.SECONDS), "the backup finished");
      assertEquals(0, backup.exitValue(), said.toString());
      assertTrue(worker.isAlive(), "the joined worker runs with the printed key: " + Files.readString(workerErr));
      assertTrue(Files.readString(workerErr).contains("records are signed and checked with the key of " + keyFile),
          Files.readString(workerErr));
      assertFalse(Files.exists(keyFile), "the key file is removed with the job");
      QemuImg.assertClean(image);
      QemuImg.assertIdentical(src, image);
    } finally {
      backup.destroyForcibly();
      if (worker != null) {
        worker.destroyForcibly();
      }
    }
  }
}
