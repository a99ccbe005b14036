package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A job resumed with the same --job-id refuses a source that is not the one it started from. */
class BackupSourceIdentityTest {
  private static final long MIB = 1 << 20;

  @TempDir Path dir;

  @Test
  void resumeRefusesASourceChangedInASampledBlockAndAcceptsItRestored() throws Exception {
    Path src = Disks.random(dir.resolve("src.raw"), 16 * MIB, 8);
    Path image = dir.resolve("src.qcow2");
    Path state = Files.createDirectory(dir.resolve("state"));
    String[] args = {"backup", "--workers", "1", "--window", "1", "--range-size", "1m", "--level", "19",
        "--checkpoint-interval", "1s", "--progress", "none", "--state-dir", state.toString(), "--job-id", "same-1",
        src.toString(), image.toString()};
    Environment env = Environment.system();
    CompletableFuture<CliRun> first = CompletableFuture.supplyAsync(() -> CliRun.of(env, args));
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (!hasStateFile(dir) && System.nanoTime() < deadline && !first.isDone()) {
      Thread.sleep(50);
    }
    assertTrue(hasStateFile(dir), "a checkpoint was committed");
    assertTrue(env.interrupts().interrupt());
    assertEquals(1, first.get(60, TimeUnit.SECONDS).exitCode());

    flipByte(src, 8 * MIB); // in the middle MiB, which the fingerprint samples
    CliRun changed = CliRun.of(args);

    assertEquals(2, changed.exitCode(), changed.err());
    assertTrue(changed.err().matches("(?s).*zcow: source changed since the job started \\(size 16777216, fingerprint"
        + " [0-9a-f]{16}; now size 16777216, fingerprint [0-9a-f]{16}\\)\\R"), changed.err());
    assertTrue(Files.exists(dir.resolve("src.qcow2.part")), "the refused run leaves the job resumable");

    flipByte(src, 8 * MIB);
    CliRun resumed = CliRun.of(args);

    assertEquals(0, resumed.exitCode(), resumed.err());
    QemuImg.assertIdentical(src, image);
  }

  private static void flipByte(Path file, long at) throws IOException {
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.seek(at);
      int b = f.read();
      f.seek(at);
      f.write(b ^ 0xff);
    }
  }

  private static boolean hasStateFile(Path d) throws IOException {
    try (Stream<Path> s = Files.list(d)) {
      return s.anyMatch(p -> p.getFileName().toString().startsWith("src.qcow2.part.state-"));
    }
  }
}
