package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code zcow backup --require-space}, {@code --pre-hook} and {@code --post-hook} on the embedded cluster. */
class BackupHooksAndSpaceTest {
  private static final long MIB = 1 << 20;

  @TempDir Path dir;

  @Test
  void requireSpaceRefusesWhenTheWorstCaseImageDoesNotFitAndStartsNothing() throws IOException {
    Path src = Disks.random(dir.resolve("src.raw"), 8 * MIB, 1);
    AtomicReference<Path> asked = new AtomicReference<>();
    Environment env = Environment.system().withUsableSpace(d -> {
      asked.set(d);
      return 8 * MIB; // the data alone, without room for metadata
    });
    Path marker = dir.resolve("pre-hook-ran");

    CliRun run = CliRun.of(env, "backup", "--require-space", "--progress", "none", "--pre-hook", "touch " + marker,
        src.toString(), dir.resolve("out.qcow2").toString());

    assertEquals(2, run.exitCode(), run.err());
    assertTrue(run.err().matches("(?s)zcow: the image may need up to (8|9)\\.\\d MiB and .* has 8\\.0 MiB usable.*") && run.err().contains("(--require-space)"),
        run.err());
    assertEquals(dir.toAbsolutePath(), asked.get(), "the target's directory is measured");
    assertEquals(List.of("src.raw"), listing(dir), "neither the pre-hook nor the job ran");
  }

  @Test
  void shortSpaceOnlyWarnsWithoutRequireSpaceAndHolesDoNotCount() throws IOException {
    // 32 MiB of which one range of 2 MiB holds data: the worst case is about 3 MiB, not 33.
    Path src = Disks.sparse(dir.resolve("sparse.raw"), 32 * MIB, 3, 0, MIB);
    Path image = dir.resolve("sparse.qcow2");
    CliRun fits = CliRun.of(Environment.system().withUsableSpace(d -> 4 * MIB), "backup", "--require-space", "--range-size", "2m", "--progress", "none",
        src.toString(), image.toString());
    assertEquals(0, fits.exitCode(), fits.err());
    assertFalse(fits.err().contains("warning"), fits.err());
    Files.delete(image);

    CliRun warned = CliRun.of(Environment.system().withUsableSpace(d -> MIB), "backup", "--range-size", "2m", "--progress", "none", src.toString(), image.toString());

    assertEquals(0, warned.exitCode(), warned.err());
    assertTrue(warned.err().matches("(?s)zcow: warning: the image may need up to [23]\\.\\d MiB .*") && warned.err().contains(
        "1.0 MiB usable; it fits only if the data compresses"), warned.err());
    QemuImg.assertIdentical(src, image);
  }

  @Test
  void failingPreHookStopsTheBackupBeforeAnythingStarts() throws IOException {
    Path src = Disks.random(dir.resolve("src.raw"), MIB, 2);
    Path post = dir.resolve("post-hook-ran");

    CliRun run = CliRun.of("backup", "--progress", "none", "--pre-hook", "echo freezing; exit 3",
        "--post-hook", "touch " + post, src.toString(), dir.resolve("out.qcow2").toString());

    assertEquals(1, run.exitCode(), run.err());
    assertTrue(run.err().contains("freezing"), "the hook's output is shown: " + run.err());
    assertTrue(run.err().contains("zcow: --pre-hook exited with status 3; nothing was started"), run.err());
    assertEquals(List.of("src.raw"), listing(dir), "no image, no post-hook");
  }

  @Test
  void hooksRunAroundASuccessfulJobAndAFailingPostHookIsOnlyReported() throws IOException {
    Path src = Disks.mixed(dir.resolve("src.raw"), 4 * MIB, 3);
    Path image = dir.resolve("out.qcow2");
    Path log = dir.resolve("hooks.log");

    CliRun run = CliRun.of("backup", "--progress", "none", "--job-id", "hooked",
        "--pre-hook", "echo \"pre $ZCOW_JOB_ID $(test -e " + image + " && echo image || echo none)\" >> " + log,
        "--post-hook", "echo \"post $ZCOW_JOB_ID $ZCOW_EXIT $(test -e " + image + " && echo image)\" >> " + log
            + "; exit 5",
        src.toString(), image.toString());

    assertEquals(0, run.exitCode(), "the backup is done even though the post-hook failed: " + run.err());
    assertTrue(run.err().contains("zcow: --post-hook exited with status 5 (the backup itself is done)"), run.err());
    assertEquals(List.of("pre hooked none", "post hooked 0 image"), Files.readAllLines(log));
    QemuImg.assertIdentical(src, image);
  }

  @Test
  void postHookRunsWhenTheJobFails() throws IOException {
    Path src = Disks.random(dir.resolve("src.raw"), MIB, 4);
    Path log = dir.resolve("hooks.log");

    // Nothing listens on port 1: the submission fails after the connect timeout.
    CliRun run = CliRun.of("backup", "--kafka", "127.0.0.1:1", "--connect-timeout", "1", "--progress", "none",
        "--post-hook", "echo \"post $ZCOW_EXIT\" > " + log, src.toString(), "out.qcow2");

    assertEquals(1, run.exitCode(), run.err());
    assertEquals(List.of("post 1"), Files.readAllLines(log));
  }

  private static List<String> listing(Path d) throws IOException {
    try (Stream<Path> s = Files.list(d)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }
}
