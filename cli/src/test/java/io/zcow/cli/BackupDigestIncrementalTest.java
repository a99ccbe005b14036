package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.testkit.QemuImg;
import io.zcow.testkit.TestData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code zcow backup --incremental PREV} without a bitmap on the embedded cluster: the writer
 * hands each task its range's digests from PREV's manifest, workers read every cluster and send
 * only those whose digest differs (and unchanged runs), so the overlay holds only the changed
 * clusters; in 1 MiB ranges, so some ranges hold no change and others a few among unchanged ones.
 */
class BackupDigestIncrementalTest {
  private static final int CS = 65536;
  @TempDir Path dir;

  private static CliRun backup(Path src, Path target, Path previous, String... extra) {
    List<String> args = new ArrayList<>(List.of("backup", "--workers", "2", "--range-size", "1m"));
    if (!List.of(extra).contains("--progress")) {
      args.addAll(List.of("--progress", "none"));
    }
    args.addAll(List.of(extra));
    if (previous != null) {
      args.addAll(List.of("--incremental", previous.toString()));
    }
    args.addAll(List.of(src.toString(), target.toString()));
    return CliRun.of(args.toArray(String[]::new));
  }

  @Test
  void rawFileFullThenTwoDigestIncrementalsThroughWorkersHoldOnlyTheChangedClusters() throws Exception {
    QemuImg.assumeAvailable();
    Path src = dir.resolve("disk.raw");
    ConvertDigestIncrementalTest.content(src);
    Path full = dir.resolve("full.qcow2");
    // The full image by convert (a backup's gets the same manifest: BackupCommandTest): one cluster fewer to start.
    CliRun r = CliRun.of("convert", "--progress", "none", src.toString(), full.toString());
    assertEquals(0, r.exitCode(), r.err());
    Path t0 = copy(src, "t0.raw");

    ConvertDigestIncrementalTest.change(src);
    Path t1 = copy(src, "t1.raw");
    Path inc1 = dir.resolve("inc1.qcow2");
    r = backup(src, inc1, full, "--progress", "plain");
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(r.err().contains(": read 257 clusters: 5 changed (1.9%), 252 unchanged, on full.qcow2"), r.err());
    QemuImg.assertOverlay(t1, inc1, CS, Set.of(16L, 17L, 144L, 192L, 256L));

    ConvertDigestIncrementalTest.poke(src, 2L << 20, TestData.random(5, 4096));
    ConvertDigestIncrementalTest.poke(src, ConvertDigestIncrementalTest.SIZE + 2 * CS, TestData.random(6, 512));
    Path t2 = copy(src, "t2.raw");
    Path inc2 = dir.resolve("inc2.qcow2");
    r = backup(src, inc2, inc1);
    assertEquals(0, r.exitCode(), r.err());
    QemuImg.assertOverlay(t2, inc2, CS, Set.of(32L, 258L));
    QemuImg.assertIdentical(t1, inc1);
    QemuImg.assertIdentical(t0, full);

    Path whole = dir.resolve("whole.qcow2");
    assertEquals(0, CliRun.of("convert", "--progress", "none", t2.toString(), whole.toString()).exitCode());
    assertArrayEquals(ConvertDigestIncrementalTest.entries(whole), ConvertDigestIncrementalTest.entries(inc2));
  }

  @Test
  void aPreviousImageWhoseManifestNoLongerMatchesIsRefusedBeforeAnythingStarts() throws Exception {
    QemuImg.assumeAvailable();
    Path src = dir.resolve("disk.raw");
    ConvertDigestIncrementalTest.content(src);
    Path full = dir.resolve("full.qcow2");
    assertEquals(0, CliRun.of("convert", "--progress", "none", src.toString(), full.toString()).exitCode());
    QemuImg.io(full, "write -P 0x61 1M 64k");
    Path target = dir.resolve("inc.qcow2");
    IncrementalChain.assertRefused(backup(src, target, full), "does not match", target);
  }

  private Path copy(Path from, String name) throws Exception {
    return Files.copy(from, dir.resolve(name));
  }
}
