package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.qcow2.Manifest;
import io.zcow.testkit.LoopDevice;
import io.zcow.testkit.QemuImg;
import io.zcow.testkit.TestData;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code zcow convert --incremental PREV} without a bitmap: every cluster of any source (a raw
 * file, a loop device) is read and digested, and only those whose SHA-256 differs from PREV's
 * digest manifest are stored. Each chain compares identical to the source at its time and checks
 * clean, each overlay holds only the changed clusters, and its manifest covers the whole disk (the
 * same bytes as a full image's of that source). A PREV whose manifest is missing or no longer
 * matches it is refused in one line.
 */
class ConvertDigestIncrementalTest {
  private static final int CS = 65536;
  /** A partial last cluster: 256 whole clusters and 12 KiB. */
  static final long SIZE = (16L << 20) + 12 * 1024;
  @TempDir Path dir;

  @Test
  void rawFileFullThenTwoDigestIncrementalsHoldOnlyTheChangedClusters() throws Exception {
    QemuImg.assumeAvailable();
    Path src = dir.resolve("disk.raw");
    content(src);
    Path full = dir.resolve("full.qcow2");
    assertEquals(0, convert(src, full).exitCode());
    Path t0 = copy(src, "t0.raw");

    change(src);
    Path t1 = copy(src, "t1.raw");
    Path inc1 = dir.resolve("inc1.qcow2");
    CliRun r = convert(src, inc1, "--progress", "plain", "--incremental", full.toString());
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(r.err().contains("read 257 clusters: 5 changed (1.9%), 252 unchanged, against " + full + ".digests"),
        r.err());
    QemuImg.assertOverlay(t1, inc1, CS, Set.of(16L, 17L, 144L, 192L, 256L));
    assertTrue(QemuImg.info(inc1).contains("\"backing-filename\": \"full.qcow2\""), QemuImg.info(inc1));

    poke(src, 2L << 20, TestData.random(5, 4096));              // cluster 32
    poke(src, SIZE + 2 * CS, TestData.random(6, 512));          // grows: 257 zeros, 258 new data
    Path t2 = copy(src, "t2.raw");
    Path inc2 = dir.resolve("inc2.qcow2");
    r = convert(src, inc2, "--incremental", inc1.toString());
    assertEquals(0, r.exitCode(), r.err());
    QemuImg.assertOverlay(t2, inc2, CS, Set.of(32L, 258L));
    QemuImg.assertIdentical(t1, inc1);
    QemuImg.assertIdentical(t0, full);
    CliRun verify = CliRun.of("verify", t2.toString(), inc2.toString());
    assertEquals(0, verify.exitCode(), verify.err());

    // The overlay's manifest is the whole disk's: what a full image of the same source gets.
    Path whole = dir.resolve("whole.qcow2");
    assertEquals(0, convert(t2, whole).exitCode());
    assertArrayEquals(entries(whole), entries(inc2));
  }

  @Test
  void loopDeviceDigestIncrementalHoldsOnlyTheChangedClusters() throws Exception {
    QemuImg.assumeAvailable();
    Path file = dir.resolve("loop.img");
    content(file);
    try (LoopDevice loop = LoopDevice.attach(file)) {
      Path dev = loop.path();
      Path full = dir.resolve("full.qcow2");
      CliRun r = convert(dev, full);
      assertEquals(0, r.exitCode(), r.err());
      change(dev);
      Path t1 = copy(dev, "t1.raw");
      Path inc = dir.resolve("inc.qcow2");
      r = convert(dev, inc, "--incremental", full.toString());
      assertEquals(0, r.exitCode(), r.err());
      QemuImg.assertOverlay(t1, inc, CS, Set.of(16L, 17L, 144L, 192L, 256L));
    }
  }

  @Test
  void aPreviousImageWithoutAMatchingManifestIsRefusedInOneLine() throws Exception {
    QemuImg.assumeAvailable();
    Path src = dir.resolve("disk.raw");
    content(src);
    Path full = dir.resolve("full.qcow2");
    assertEquals(0, convert(src, full).exitCode());
    Path target = dir.resolve("inc.qcow2");

    // qemu-img commit of an overlay written by QEMU changes PREV under its manifest.
    Path top = dir.resolve("top.qcow2");
    QemuImg.createOverlay(top, "full.qcow2");
    QemuImg.io(top, "write -P 0x61 1M 64k");
    QemuImg.commit(top);
    IncrementalChain.assertRefused(convert(src, target, "--incremental", full.toString()), "does not match", target);
    IncrementalChain.assertRefused(convert(src, target, "--incremental", full.toString()), "run a full backup", target);

    Files.delete(Manifest.pathOf(full));
    IncrementalChain.assertRefused(convert(src, target, "--incremental", full.toString()), "has no digest manifest",
        target);
    assertTrue(Files.notExists(Manifest.partOf(target)) && Files.notExists(Manifest.pathOf(target)));
  }

  private static CliRun convert(Path src, Path target, String... extra) {
    List<String> args = new java.util.ArrayList<>(List.of("convert"));
    if (!List.of(extra).contains("--progress")) {
      args.addAll(List.of("--progress", "none"));
    }
    args.addAll(List.of(extra));
    args.addAll(List.of(src.toString(), target.toString()));
    return CliRun.of(args.toArray(String[]::new));
  }

  /** Data in places, zeros elsewhere, data in the partial last cluster. */
  static void content(Path p) throws IOException {
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      ch.truncate(0);
      ch.write(ByteBuffer.wrap(new byte[] {0}), SIZE - 1);
    }
    poke(p, 0, TestData.compressible(1, 3 << 20));
    poke(p, 9L << 20, TestData.random(2, 2 << 20));
    poke(p, SIZE - 8192, TestData.random(3, 8192));
  }

  /** Data over data (16, 17), data now zeros (144), data into zeros (192), the last partial cluster (256). */
  static void change(Path p) throws IOException {
    poke(p, 1L << 20, TestData.random(4, 128 * 1024));
    poke(p, 9L << 20, new byte[CS]);
    poke(p, (12L << 20) + 4096, TestData.random(7, 4096));
    poke(p, SIZE - 100, TestData.random(8, 50));
  }

  static void poke(Path p, long at, byte[] bytes) throws IOException {
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
      ByteBuffer b = ByteBuffer.wrap(bytes);
      while (b.hasRemaining()) {
        ch.write(b, at + b.position());
      }
      ch.force(true);
    }
  }

  private Path copy(Path from, String name) throws IOException {
    Path to = dir.resolve(name);
    try (var in = Files.newInputStream(from)) {
      Files.copy(in, to);
    }
    return to;
  }

  static byte[] entries(Path image) throws IOException {
    byte[] all = Files.readAllBytes(Manifest.pathOf(image));
    return Arrays.copyOfRange(all, Manifest.HEADER_BYTES, all.length);
  }
}
