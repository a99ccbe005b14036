package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.testkit.NbdServer;
import io.zcow.testkit.QemuImg;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code zcow backup --incremental PREV --bitmap NAME} on the embedded cluster: the scenario of
 * {@link IncrementalChain} (full, two overlays, bitmap rotated, guest grown) through coordinator,
 * writer and workers, in 1 MiB ranges so that some ranges hold no change at all and others a few
 * changed clusters among unchanged ones; refused inputs are one line, exit 2, nothing at TARGET.
 */
class BackupIncrementalTest {
  @TempDir Path dir;

  static CliRun backup(NbdServer s, Path target, Path previous, String bitmap, String... extra) {
    List<String> args = new ArrayList<>(List.of("backup", "--workers", "2", "--range-size", "1m"));
    if (!List.of(extra).contains("--progress")) {
      args.addAll(List.of("--progress", "none"));
    }
    args.addAll(List.of(extra));
    if (previous != null) {
      args.addAll(List.of("--incremental", previous.toString(), "--bitmap", bitmap));
    }
    args.addAll(List.of(s.uri(), target.toString()));
    return CliRun.of(args.toArray(String[]::new));
  }

  @Test
  void fullThenTwoIncrementalsEachReadAsTheGuestAtItsTime() throws Exception {
    IncrementalChain.fullThenTwoIncrementals(dir, dir, BackupIncrementalTest::backup);
  }

  @Test
  void overlayInAnotherDirectoryNamesItsBackingFileRelativelyAndProgressCountsChangedBytes() throws Exception {
    QemuImg.assumeAvailable();
    Path guest = IncrementalChain.guest(dir);
    Path full = dir.resolve("full.qcow2");
    Path sub = Files.createDirectories(dir.resolve("later"));
    Path inc = sub.resolve("inc.qcow2");
    try (NbdServer s = NbdServer.qemuNbd(guest, "qcow2").bitmap("b0").start()) {
      assertEquals(0, CliRun.of("convert", "--progress", "none", s.uri(), full.toString()).exitCode());
    }
    QemuImg.io(guest, "write -P 0x99 7M 64k");
    try (NbdServer s = NbdServer.qemuNbd(guest, "qcow2").bitmap("b0").start()) {
      CliRun r = backup(s, inc, full, "b0", "--progress", "plain");
      assertEquals(0, r.exitCode(), r.err());
      // One changed cluster of 256: the progress counts it, with its share of the disk.
      assertTrue(r.err().contains("100.0%  64.0 KiB / 64.0 KiB changed (0.4% of 16.0 MiB)"), r.err());
      assertTrue(r.err().contains(": changed 64.0 KiB, 0.4% of the disk's 16.0 MiB, on full.qcow2"), r.err());
    }
    QemuImg.assertOverlay(IncrementalChain.snapshot(guest, dir, "t1.raw"), inc, IncrementalChain.CS,
        java.util.Set.of(112L));
    org.junit.jupiter.api.Assertions.assertTrue(QemuImg.info(inc).contains("\"backing-filename\": \"../full.qcow2\""),
        QemuImg.info(inc));
  }

  @Test
  void refusesWhatCannotBeAnIncrementalOfThisSourceWithOneLineAndNothingAtTarget() throws Exception {
    QemuImg.assumeAvailable();
    Path guest = IncrementalChain.guest(dir);
    Path full = dir.resolve("full.qcow2");
    Path other = dir.resolve("other-cluster.qcow2");
    Path big = dir.resolve("big.qcow2");
    try (NbdServer s = NbdServer.qemuNbd(guest, "qcow2").bitmap("b0").start()) {
      assertEquals(0, CliRun.of("convert", "--progress", "none", s.uri(), full.toString()).exitCode());
      assertEquals(0, CliRun.of("convert", "--progress", "none", "--cluster-size", "128k", s.uri(), other.toString())
          .exitCode());
    }
    QemuImg.create(big, IncrementalChain.SIZE + IncrementalChain.CS, IncrementalChain.CS);
    Path target = dir.resolve("inc.qcow2");
    try (NbdServer s = NbdServer.qemuNbd(guest, "qcow2").bitmap("b0").start()) {
      IncrementalChain.assertRefused(backup(s, target, dir.resolve("none.qcow2"), "b0"), "does not exist", target);
      IncrementalChain.assertRefused(backup(s, target, IncrementalChain.snapshot(guest, dir, "t0.raw"), "b0"),
          "not a usable qcow2", target);
      IncrementalChain.assertRefused(backup(s, target, other, "b0"), "cluster size", target);
      IncrementalChain.assertRefused(backup(s, target, full, "nope"), "no dirty bitmap nope", target);
      IncrementalChain.assertRefused(backup(s, target, big, "b0"), "shrank", target);
    }
  }
}
