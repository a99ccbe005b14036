package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.testkit.NbdServer;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * The incremental scenario every way of making a chain must pass with the real QEMU tools: a
 * qcow2 guest with a persistent dirty bitmap, changed with qemu-io while no export runs (data over
 * data, {@code write -z}, {@code discard}, a write smaller than a cluster, the last cluster),
 * exported with {@code qemu-nbd -r -e 8 -B NAME}; a full image, then two overlays with the bitmap
 * rotated between them (and the guest grown before the second). Each chain compares identical to
 * the guest at its time and checks clean, each overlay maps only the changed clusters (depth 0),
 * names its backing file relative to itself, and {@code zcow verify} reads the chain as the guest.
 */
final class IncrementalChain {
  static final int CS = 65536;
  static final long SIZE = 16L << 20;

  /** One way of writing an image: convert, an embedded backup, a backup on a cluster. */
  interface Maker {
    /**
     * Writes {@code target} from the export, as an overlay on {@code previous} with {@code bitmap}
     * when {@code previous} is not null; {@code extra} options go before SOURCE.
     */
    CliRun make(NbdServer server, Path target, Path previous, String bitmap, String... extra) throws Exception;
  }

  private IncrementalChain() {}

  /** A 16 MiB qcow2 guest with data, and the enabled persistent bitmap b0 recording from now on. */
  static Path guest(Path dir) {
    Path g = dir.resolve("guest.qcow2");
    QemuImg.create(g, SIZE, CS);
    QemuImg.io(g, "write -P 0x5a 0 3M", "write -P 0x33 5M 64k", "write -P 0x77 9M 2M", "write -P 0x12 16711680 64k");
    QemuImg.addBitmap(g, "b0", CS);
    return g;
  }

  static Path snapshot(Path guest, Path dir, String name) {
    Path raw = dir.resolve(name);
    QemuImg.toRaw(guest, raw);
    return raw;
  }

  /** The scenario; images go to {@code images} (a directory under which {@code maker} may write). */
  static void fullThenTwoIncrementals(Path dir, Path images, Maker maker) throws Exception {
    fullThenTwoIncrementals(dir, images, b -> b, maker);
  }

  /** As above, each export started from {@code serve}'s builder (e.g. on a fixed Unix socket). */
  static void fullThenTwoIncrementals(Path dir, Path images, UnaryOperator<NbdServer.Builder> serve, Maker maker)
      throws Exception {
    QemuImg.assumeAvailable();
    Path guest = guest(dir);
    Path full = images.resolve("full.qcow2");
    try (NbdServer s = serve.apply(NbdServer.qemuNbd(guest, "qcow2").bitmap("b0")).start()) {
      CliRun r = maker.make(s, full, null, null);
      assertEquals(0, r.exitCode(), r.err());
    }
    Path t0 = snapshot(guest, dir, "t0.raw");
    QemuImg.assertIdentical(t0, full);

    QemuImg.io(guest,
        "write -P 0xcc 1M 128k",        // clusters 16, 17 (data over data)
        "write -z 9M 64k",              // 144: data now zero
        "discard 5M 64k",               // 80: data discarded
        "write -P 0x22 12587008 4096",  // 192: 12M + 4k, less than a cluster, into zeros
        "write -P 0x11 16776704 512");  // 255: the last sector
    Path t1 = snapshot(guest, dir, "t1.raw");
    Path inc1 = images.resolve("inc1.qcow2");
    try (NbdServer s = serve.apply(NbdServer.qemuNbd(guest, "qcow2").bitmap("b0")).start()) {
      CliRun r = maker.make(s, inc1, full, "b0");
      assertEquals(0, r.exitCode(), r.err());
    }
    QemuImg.assertOverlay(t1, inc1, CS, Set.of(16L, 17L, 80L, 144L, 192L, 255L));
    assertTrue(QemuImg.info(inc1).contains("\"backing-filename\": \"full.qcow2\""), QemuImg.info(inc1));

    // Rotate: a new bitmap records from here on, the old one goes.
    QemuImg.addBitmap(guest, "b1", CS);
    QemuImg.removeBitmap(guest, "b0");
    QemuImg.resize(guest, SIZE + 3 * CS + 512); // grows: clusters 256..259 are new
    QemuImg.io(guest, "write -P 0x44 2M 64k", "write -z 16M 64k", "write -P 0x45 16908288 512");
    Path t2 = snapshot(guest, dir, "t2.raw");
    Path inc2 = images.resolve("inc2.qcow2");
    try (NbdServer s = serve.apply(NbdServer.qemuNbd(guest, "qcow2").bitmap("b1")).start()) {
      CliRun r = maker.make(s, inc2, inc1, "b1");
      assertEquals(0, r.exitCode(), r.err());
    }
    QemuImg.assertOverlay(t2, inc2, CS, Set.of(32L, 256L, 257L, 258L, 259L));
    QemuImg.assertIdentical(t1, inc1);
    QemuImg.assertIdentical(t0, full);
    CliRun verify = CliRun.of("verify", t2.toString(), inc2.toString());
    assertEquals(0, verify.exitCode(), verify.err());
  }

  /** A refused run: exit 2, one line naming {@code expected}, nothing at TARGET. */
  /**
   * A copy of {@code image} whose refcount table names no block, so every cluster in use counts as
   * free: a PREV that qemu-img check calls corrupt.
   */
  static Path unsoundCopy(Path image, Path copy) throws IOException {
    Files.copy(image, copy);
    try (FileChannel ch = FileChannel.open(copy, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      ByteBuffer offset = ByteBuffer.allocate(8);
      ch.read(offset, 48); // refcount_table_offset
      ch.write(ByteBuffer.allocate(8), offset.flip().getLong());
    }
    return copy;
  }

  static void assertRefused(CliRun run, String expected, Path target) {
    assertEquals(2, run.exitCode(), run.err());
    String err = run.err().strip();
    assertEquals(1, err.lines().count(), "one line: " + err);
    assertTrue(err.contains(expected), "'" + expected + "' in: " + err);
    assertTrue(Files.notExists(target), target + " exists");
    assertTrue(Files.notExists(target.resolveSibling(target.getFileName() + ".part")), "a .part exists");
  }
}
