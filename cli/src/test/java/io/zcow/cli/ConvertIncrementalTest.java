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
  private static final int CS = 65536;
  private static final long SIZE = 16L << 20;
  @TempDir Path dir;

  private Path guest() {
    Path g = dir.resolve("guest.qcow2");
    QemuImg.create(g, SIZE, CS);
    QemuImg.io(g, "write -P 0x5a 0 3M", "write -P 0x33 5M 64k", "write -P 0x77 9M 2M", "write -P 0x12 16711680 64k");
    QemuImg.addBitmap(g, "b0", CS);
    return g;
  }

  private Path snapshot(Path guest, String name) {
    Path raw = dir.resolve(name);
    QemuImg.toRaw(guest, raw);
    return raw;
  }

  private static CliRun convert(NbdServer s, Path target, String... extra) {
    List<String> args = new java.util.ArrayList<>(List.of("convert", "--progress", "none"));
    args.addAll(List.of(extra));
    args.addAll(List.of(s.uri(), target.toString()));
    return CliRun.of(args.toArray(String[]::new));
  }

  @Test
  void fullThenTwoIncrementalsEachReadAsTheGuestAtItsTime() throws Exception {
    QemuImg.assumeAvailable();
    Path guest = guest();
    Path full = dir.resolve("full.qcow2");
    try (NbdServer s = NbdServer.qemuNbd(guest, "qcow2").bitmap("b0").start()) {
      CliRun r = convert(s, full);
      assertEquals(0, r.exitCode(), r.err());
    }
    Path t0 = snapshot(guest, "t0.raw");
    QemuImg.assertIdentical(t0, full);

    QemuImg.io(guest,
        "write -P 0xcc 1M 128k",        // clusters 16, 17 (data over data)
        "write -z 9M 64k",              // 144: data now zero
        "discard 5M 64k",               // 80: data discarded
        "write -P 0x22 12587008 4096",  // 192: 12M + 4k, less than a cluster, into zeros
        "write -P 0x11 16776704 512");  // 255: the last sector
    Path t1 = snapshot(guest, "t1.raw");
    Path inc1 = dir.resolve("inc1.qcow2");
    try (NbdServer s = NbdServer.qemuNbd(guest, "qcow2").bitmap("b0").start()) {
      CliRun r = convert(s, inc1, "--incremental", full.toString(), "--bitmap", "b0");
      assertEquals(0, r.exitCode(), r.err());
    }
    QemuImg.assertOverlay(t1, inc1, CS, java.util.Set.of(16L, 17L, 80L, 144L, 192L, 255L));
    assertTrue(QemuImg.info(inc1).contains("\"backing-filename\": \"full.qcow2\""), QemuImg.info(inc1));

    // Rotate: a new bitmap records from here on, the old one goes.
    QemuImg.addBitmap(guest, "b1", CS);
    QemuImg.removeBitmap(guest, "b0");
    QemuImg.resize(guest, SIZE + 3 * CS + 512); // grows: clusters 256..259 are new
    QemuImg.io(guest, "write -P 0x44 2M 64k", "write -z 16M 64k", "write -P 0x45 16908288 512");
    Path t2 = snapshot(guest, "t2.raw");
    Path inc2 = dir.resolve("inc2.qcow2");
    try (NbdServer s = NbdServer.qemuNbd(guest, "qcow2").bitmap("b1").start()) {
      CliRun r = convert(s, inc2, "--incremental", inc1.toString(), "--bitmap", "b1");
      assertEquals(0, r.exitCode(), r.err());
    }
    QemuImg.assertOverlay(t2, inc2, CS, java.util.Set.of(32L, 256L, 257L, 258L, 259L));
    QemuImg.assertIdentical(t1, inc1);
    QemuImg.assertIdentical(t0, full);
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
      assertRefused(convert(s, target, "--incremental", full.toString(), "--bitmap", "nope"),
          "no dirty bitmap nope", target);
      assertRefused(convert(s, target, "--incremental", big.toString(), "--bitmap", "b0"), "shrank", target);
      assertRefused(convert(s, target, "--incremental", full.toString()), "go together", target);
    }
    assertRefused(CliRun.of("convert", "--progress", "none", "--incremental", full.toString(), "--bitmap", "b0",
        snapshot(guest, "t1.raw").toString(), target.toString()), "needs an NBD SOURCE", target);
  }

  private static void assertRefused(CliRun run, String expected, Path target) {
    assertEquals(2, run.exitCode(), run.err());
    String err = run.err().strip();
    assertEquals(1, err.lines().count(), "one line: " + err);
    assertTrue(err.contains(expected), "'" + expected + "' in: " + err);
    assertTrue(Files.notExists(target), target + " exists");
    assertTrue(Files.notExists(target.resolveSibling(target.getFileName() + ".part")), "a .part exists");
  }

}
