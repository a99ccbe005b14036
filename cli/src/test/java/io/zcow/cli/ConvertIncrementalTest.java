package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.testkit.NbdServer;
import io.zcow.testkit.QemuImg;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code zcow convert --incremental PREV --bitmap NAME} from qemu-nbd {@code -B NAME}: a full
 * image, then two overlays (the bitmap rotated between them), each chain identical to the guest
 * at its time and clean, each overlay holding only the changed clusters; refused inputs are one
 * line, exit 2 and nothing at TARGET.
 */
class ConvertIncrementalTest {
  private static final int CS = IncrementalChain.CS;
  private static final long SIZE = IncrementalChain.SIZE;
  @TempDir Path dir;

  private Path guest() {
    return IncrementalChain.guest(dir);
  }

  private Path snapshot(Path guest, String name) {
    return IncrementalChain.snapshot(guest, dir, name);
  }

  private static CliRun convert(NbdServer s, Path target, String... extra) {
    List<String> args = new java.util.ArrayList<>(List.of("convert", "--progress", "none"));
    args.addAll(List.of(extra));
    args.addAll(List.of(s.uri(), target.toString()));
    return CliRun.of(args.toArray(String[]::new));
  }

  @Test
  void fullThenTwoIncrementalsEachReadAsTheGuestAtItsTime() throws Exception {
    IncrementalChain.fullThenTwoIncrementals(dir, dir, (s, target, previous, bitmap, extra) -> previous == null
        ? convert(s, target, extra)
        : convert(s, target, concat(extra, "--incremental", previous.toString(), "--bitmap", bitmap)));
  }

  @Test
  void progressCountsTheChangedBytesAndTheirShareOfTheDisk() throws Exception {
    QemuImg.assumeAvailable();
    Path guest = guest();
    Path full = dir.resolve("full.qcow2");
    try (NbdServer s = NbdServer.qemuNbd(guest, "qcow2").bitmap("b0").start()) {
      assertEquals(0, convert(s, full).exitCode());
    }
    QemuImg.io(guest, "write -P 0x99 7M 64k", "write -P 0x98 8M 4k");
    try (NbdServer s = NbdServer.qemuNbd(guest, "qcow2").bitmap("b0").start()) {
      List<String> args = List.of("convert", "--progress", "plain", "--incremental", full.toString(), "--bitmap", "b0",
          s.uri(), dir.resolve("inc.qcow2").toString());
      CliRun r = CliRun.of(args.toArray(String[]::new));
      assertEquals(0, r.exitCode(), r.err());
      assertTrue(r.err().contains("100.0%  128.0 KiB / 128.0 KiB changed (0.8% of 16.0 MiB)"), r.err());
      assertTrue(r.err().contains("changed 128.0 KiB, 0.8% of the disk's 16.0 MiB, on " + full), r.err());
    }
  }

  static String[] concat(String[] a, String... b) {
    String[] all = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, all, a.length, b.length);
    return all;
  }

  @Test
  void refusesWhatCannotBeAnIncrementalOfThisSourceWithOneLineAndNothingAtTarget() throws Exception {
    QemuImg.assumeAvailable();
    Path guest = guest();
    Path full = dir.resolve("full.qcow2");
    Path big = dir.resolve("big.qcow2");
    Path other = dir.resolve("other-cluster.qcow2");
    try (NbdServer s = NbdServer.qemuNbd(guest, "qcow2").bitmap("b0").start()) {
      assertEquals(0, convert(s, full).exitCode());
      assertEquals(0, convert(s, other, "--cluster-size", "128k").exitCode());
    }
    QemuImg.create(big, SIZE + CS, CS);
    Path target = dir.resolve("inc.qcow2");
    try (NbdServer s = NbdServer.qemuNbd(guest, "qcow2").bitmap("b0").start()) {
      assertRefused(convert(s, target, "--incremental", dir.resolve("none.qcow2").toString(), "--bitmap", "b0"),
          "does not exist", target);
      assertRefused(convert(s, target, "--incremental", snapshot(guest, "t0.raw").toString(), "--bitmap", "b0"),
          "not a usable qcow2", target);
      assertRefused(convert(s, target, "--incremental", other.toString(), "--bitmap", "b0"), "cluster size", target);
      assertRefused(convert(s, target, "--incremental", IncrementalChain.unsoundCopy(full, dir.resolve("unsound.qcow2")).toString(), "--bitmap", "b0"),
          "not check-clean", target);
      assertRefused(convert(s, target, "--incremental", full.toString(), "--bitmap", "nope"),
          "no dirty bitmap nope", target);
      assertRefused(convert(s, target, "--incremental", big.toString(), "--bitmap", "b0"), "shrank", target);
      assertRefused(convert(s, target, "--bitmap", "b0"), "--bitmap needs --incremental", target);
    }
    assertRefused(CliRun.of("convert", "--progress", "none", "--incremental", full.toString(), "--bitmap", "b0",
        snapshot(guest, "t1.raw").toString(), target.toString()), "needs an NBD SOURCE", target);
  }

  private static void assertRefused(CliRun run, String expected, Path target) {
    IncrementalChain.assertRefused(run, expected, target);
  }

}
