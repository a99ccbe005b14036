package io.zcow.cli.faults;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.cli.Main;
import io.zcow.qcow2.DirectFile;
import io.zcow.qcow2.ImageWriter;
import io.zcow.qcow2.TargetCache;
import io.zcow.testkit.Disks;
import io.zcow.testkit.FaultyDisk;
import io.zcow.testkit.QemuImg;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fault scenario: the writers' target disk fails, and another is slow. The target root is ext4 on a
 * {@link FaultyDisk} whose writes fail with EIO from the kernel while the test says so; a second
 * one, mounted at {@code slow/} inside the root, delays every write request. Two jobs run at once:
 * <ul>
 *   <li>errors switched on mid-job → that job FAILS (coordinator exit 1, a reason naming the
 *       file and the error), nothing at TARGET, TARGET.part kept; the writer stays up;
 *   <li>the job on the slow disk only slows: it ends identical and clean meanwhile;
 *   <li>errors switched off → the same --job-id resumes from its checkpoint to an identical,
 *       clean image.
 * </ul>
 */
class FailingDiskScenarioTest {
  private static final long FS_SIZE = 64L << 20;
  private static final long SOURCE_SIZE = 24L << 20;
  private static final long SLOW_SOURCE_SIZE = 8L << 20;
  private static final Duration WRITE_DELAY = Duration.ofMillis(20);
  private static final Duration JOB = Duration.ofSeconds(120);
  /** The writer's reason: "target I/O error: OPERATION of ... failed: ERROR". */
  private static final Pattern REASON = Pattern.compile("target I/O error: (\\w+)[^;]*? failed: ([^;(]+)");

  @TempDir
  Path dir;

  @Test
  void writeErrorsFailTheJobAtItsCheckpointAndTheSameJobIdResumesOnceTheDiskWorksWhileASlowDiskOnlySlows()
      throws Exception {
    QemuImg.assumeAvailable();
    Path source = Disks.random(dir.resolve("source.raw"), SOURCE_SIZE, 43);
    Path slowSource = Disks.mixed(dir.resolve("slow-source.raw"), SLOW_SOURCE_SIZE, 47);
    try (LoopbackCluster cluster = LoopbackCluster.start(dir.resolve("cluster"))) {
      Path root = cluster.targetRoot();
      try (FaultyDisk failing = FaultyDisk.start(dir.resolve("failing"), root, FS_SIZE, Duration.ZERO);
          FaultyDisk slow = FaultyDisk.start(dir.resolve("slow"), Files.createDirectories(root.resolve("slow")),
              FS_SIZE, WRITE_DELAY)) {
        try {
          scenario(cluster, failing, slow, source, slowSource);
        } finally {
          cluster.close(); // the writer's files on the mounts must be closed before they unmount
          FaultReport.shared().print();
        }
      }
    }
  }

  private void scenario(LoopbackCluster cluster, FaultyDisk failing, FaultyDisk slow, Path source, Path slowSource)
      throws Exception {
    Path root = cluster.targetRoot();
    long directWriteMs = timedDirectWrite(slow.mountPoint().resolve("probe"));
    cluster.startWriter("writer");
    cluster.startWorker("worker-1", "--max-read-rate", "4");
    cluster.startWorker("worker-2", "--max-read-rate", "4");
    List<String> args = cluster.backupArgs(source, "disk.qcow2", "eio-1");
    List<String> slowArgs = cluster.backupArgs(slowSource, "slow/disk.qcow2", "slow-1");
    Path image = root.resolve("disk.qcow2");
    Path slowImage = root.resolve("slow/disk.qcow2");

    Instant slowStart = Instant.now();
    Role slowBackup = cluster.startBackup("backup-slow", slowArgs);
    Role first = cluster.startBackup("backup-1", args);
    cluster.events().awaitRangesDone("eio-1", 2, JOB);
    failing.failWrites(true);
    Instant fault = Instant.now();
    int exit = first.await(JOB);
    Duration toFailed = Duration.between(fault, Instant.now());
    assertEquals(Main.EXIT_FAILED, exit, first.describe());
    String stderr = first.stderr();
    Matcher reason = REASON.matcher(stderr);
    assertTrue(reason.find(), "the reason says it is a target I/O error: " + first.describe());
    assertTrue(stderr.contains("Input/output error"), first.describe());
    assertTrue(stderr.contains(ImageWriter.partPath(image).toString()), "the reason names the file: " + stderr);
    assertTrue(stderr.contains("same job id"), "the reason says how to resume: " + stderr);
    assertFalse(Files.exists(image), "nothing at the target path after the failure");
    assertTrue(Files.exists(ImageWriter.partPath(image)), "the .part file is kept for a resume");
    Role writer = cluster.roles().stream().filter(r -> r.name().equals("writer")).findFirst().orElseThrow();
    assertTrue(writer.isAlive(), "the writer stays up: " + writer.describe());
    FaultReport.shared().add(new FaultReport.Row("target disk fails (EIO)",
        "every write to the writers' target disk fails with EIO (nbdkit error filter under ext4 on a loop device)"
            + " after 2 of " + (SOURCE_SIZE >> 22) + " ranges",
        "FAILED (exit " + exit + ", '" + reason.group(1) + " ... " + reason.group(2).trim() + "'), "
            + (Files.exists(image) ? "an image at TARGET" : "nothing at TARGET") + ", .part "
            + (Files.exists(ImageWriter.partPath(image)) ? "kept" : "gone") + ", writer "
            + (writer.isAlive() ? "up" : "dead"), -1, toFailed));

    System.out.println("backup-1 said: " + stderr.lines().filter(l -> l.contains("target I/O error")).findFirst()
        .orElse(stderr));

    // The disk works again: the same job id resumes while the other job is still going.
    failing.failWrites(false);
    Instant resumed = Instant.now();
    Role second = cluster.startBackup("backup-2", args);

    // The other job, on the slow disk, went on through the failure: a slow disk only slows.
    assertEquals(Main.EXIT_OK, slowBackup.await(JOB), slowBackup.describe());
    Duration slowTook = Duration.between(slowStart, Instant.now());
    long slowLost = FaultReport.shared().addImage("target disk slow",
        "every write request to the target disk delayed " + WRITE_DELAY.toMillis() + " ms (nbdkit delay filter; a 1 MiB"
            + " O_DIRECT write + fdatasync took " + directWriteMs + " ms), " + (SLOW_SOURCE_SIZE >> 20)
            + " MiB disk, while the other job's disk failed", slowSource, slowImage, slowTook);
    QemuImg.assertClean(slowImage);
    QemuImg.assertIdentical(slowSource, slowImage);
    assertEquals(0, slowLost);

    assertEquals(Main.EXIT_OK, second.await(JOB), second.describe());
    Duration took = Duration.between(resumed, Instant.now());
    assertFalse(Files.exists(ImageWriter.partPath(image)));
    long lost = FaultReport.shared().addImage("target disk fails, then works again",
        "errors switched off, backup re-run with the same --job-id", source, image, took);
    QemuImg.assertClean(image);
    QemuImg.assertIdentical(source, image);
    assertEquals(0, lost);
    assertTrue(writer.isAlive(), "the writer stays up: " + writer.describe());
  }

  /** Milliseconds a 1 MiB O_DIRECT write and its fdatasync take on {@code file}'s disk. */
  private static long timedDirectWrite(Path file) {
    long t0 = System.nanoTime();
    try (DirectFile f = DirectFile.open(file, TargetCache.DIRECT, true)) {
      ByteBuffer b = DirectFile.allocateAligned(1 << 20, f.alignment());
      f.write(b, 0);
      f.force();
    }
    long ms = (System.nanoTime() - t0) / 1_000_000;
    try {
      Files.delete(file);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return ms;
  }
}
