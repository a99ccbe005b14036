package io.zcow.cli.faults;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.zcow.cli.Main;
import io.zcow.qcow2.ImageWriter;
import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fault scenario: the writers' target file system fills up. The writers' --target-root is a small
 * ext4 file system loop-mounted for the test (needs root and a loop device: skipped otherwise),
 * mostly taken by a filler file. The job must FAIL (coordinator exit 1, a reason that says the
 * file system is full), leave nothing at TARGET and keep TARGET.part; once the filler is deleted,
 * the same --job-id resumes to an image that is identical to the source and clean.
 */
class TargetFullScenarioTest {
  private static final long FS_SIZE = 48L << 20;
  private static final long SOURCE_SIZE = 24L << 20;
  /** Space left beside the filler: about half of what the (incompressible) image needs. */
  private static final long ROOM = 12L << 20;

  @TempDir
  Path dir;

  @Test
  void aFullTargetFailsTheJobCleanlyAndTheSameJobIdResumesOnceSpaceIsFreed() throws Exception {
    QemuImg.assumeAvailable();
    assumeTrue("root".equals(System.getProperty("user.name")), "loop-mounting a file system needs root");
    Path fsImage = dir.resolve("target-fs.img");
    Path source = Disks.random(dir.resolve("source.raw"), SOURCE_SIZE, 41);
    try (LoopbackCluster cluster = LoopbackCluster.start(dir.resolve("cluster"))) {
      Path root = cluster.targetRoot();
      assumeTrue(run("truncate", "-s", Long.toString(FS_SIZE), fsImage.toString())
          && run("mkfs.ext4", "-q", "-F", fsImage.toString()), "cannot make an ext4 file system");
      assumeTrue(run("mount", "-o", "loop", fsImage.toString(), root.toString()), "cannot loop-mount " + fsImage);
      try {
        Path filler = root.resolve("filler");
        fill(filler, Files.getFileStore(root).getUsableSpace() - ROOM);
        cluster.startWriter("writer");
        cluster.startWorker("worker", "--max-read-rate", "4");
        List<String> args = cluster.backupArgs(source, "disk.qcow2", "full-1");
        Path image = root.resolve("disk.qcow2");

        Role first = cluster.startBackup("backup-1", args);
        int exit = first.await(Duration.ofSeconds(120));
        // The row says what was observed: the exit code, the job's reason as the command printed
        // it (up to its first ':'), and what is on the target volume.
        String reason = first.stderr().lines().filter(l -> l.startsWith("zcow: job full-1 failed: ")).findFirst()
            .map(l -> l.substring("zcow: job full-1 failed: ".length()).split(":", 2)[0]).orElse("no FAILED line");
        boolean atTarget = Files.exists(image);
        boolean partKept = Files.exists(ImageWriter.partPath(image));
        FaultReport.shared().add(new FaultReport.Row("target file system full",
            "writers' target root on a " + (FS_SIZE >> 20) + " MiB ext4, " + (ROOM >> 20)
                + " MiB free for a " + (SOURCE_SIZE >> 20) + " MiB incompressible disk",
            "exit " + exit + ", '" + reason + "', " + (atTarget ? "an image at TARGET" : "nothing at TARGET") + ", .part "
                + (partKept ? "kept" : "gone"), -1, null));
        assertEquals(Main.EXIT_FAILED, exit, first.describe());
        assertEquals("target file system is full", reason, first.describe());
        assertFalse(atTarget, "nothing at the target path after the failure");
        assertTrue(partKept, "the .part file is kept for a resume");

        Files.delete(filler);
        Instant resumed = Instant.now();
        Role second = cluster.startBackup("backup-2", args);
        assertEquals(Main.EXIT_OK, second.await(Duration.ofSeconds(120)), second.describe());
        Duration took = Duration.between(resumed, Instant.now());
        assertFalse(Files.exists(ImageWriter.partPath(image)));
        long lost = FaultReport.shared().addImage("target file system full, then freed",
            "filler deleted, backup re-run with the same --job-id", source, image, took);
        QemuImg.assertClean(image);
        QemuImg.assertIdentical(source, image);
        assertEquals(0, lost);
        assertTrue(cluster.roles().stream().filter(r -> r.name().equals("writer")).allMatch(Role::isAlive),
            "the writer stays up: " + cluster.logsOfRoles());
      } finally {
        cluster.close(); // the writer's files on the mount must be closed before it unmounts
        unmount(root);
        FaultReport.shared().print();
      }
    }
  }

  /** Unmounts, waiting a little for the killed roles' files to close; lazily as a last resort. */
  private static void unmount(Path mountPoint) throws IOException, InterruptedException {
    for (int i = 0; i < 20; i++) {
      if (run("umount", mountPoint.toString())) {
        return;
      }
      Thread.sleep(250);
    }
    run("umount", "-l", mountPoint.toString());
  }

  /** Writes {@code bytes} of zeros for real (a sparse file would take no space). */
  private static void fill(Path file, long bytes) throws IOException {
    byte[] block = new byte[1 << 20];
    try (OutputStream out = Files.newOutputStream(file)) {
      for (long left = bytes; left > 0; left -= block.length) {
        out.write(block, 0, (int) Math.min(block.length, left));
      }
    }
  }

  private static boolean run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      return false;
    }
    String out = new String(p.getInputStream().readAllBytes());
    if (p.exitValue() != 0) {
      System.err.println(String.join(" ", command) + ": exit " + p.exitValue() + ": " + out);
    }
    return p.exitValue() == 0;
  }
}
