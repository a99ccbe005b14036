package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** SIGTERM to a submitting {@code zcow backup --kafka}: it lets go at once, and says what it leaves behind. */
class BackupSignalTest {
  @TempDir Path dir;

  @Test
  void sigtermWhileTheClusterIsUnreachableExitsPromptlyAndSaysNothingWasSubmitted() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort(); // closed again: nothing listens there
    }
    Path source = Files.write(dir.resolve("disk.img"), new byte[1 << 20]);
    Path err = dir.resolve("err.txt");
    Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), Main.class.getName(), "backup", "--kafka", "127.0.0.1:" + port, "--auth-key-file", ClusterKeys.file().toString(),
        "--connect-timeout", "60", "--progress", "plain", "--job-id", "signalled", source.toString(), "image.qcow2")
        .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(err.toFile()).start();
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (!Files.readString(err).contains("zcow backup: job signalled on Kafka")) {
        assertTrue(p.isAlive() && System.nanoTime() < deadline, "the backup starts: " + Files.readString(err));
        Thread.sleep(100);
      }
      p.destroy(); // SIGTERM, while the coordinator still waits for the cluster (60 s allowed)
      // The old hook waited 10 s for the follower; the connect timeout is 60 s.
      assertTrue(p.waitFor(8, TimeUnit.SECONDS), "exited soon after SIGTERM: " + Files.readString(err));
      String said = Files.readString(err, StandardCharsets.UTF_8);
      assertEquals(143, p.exitValue(), said);
      assertTrue(said.contains("zcow backup: stopped before job signalled reached the cluster: nothing was submitted"),
          said);
      assertFalse(said.contains("detached"), "nothing runs that could be re-attached: " + said);
    } finally {
      p.destroyForcibly();
    }
  }
}
