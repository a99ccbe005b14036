package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.testkit.QemuImg;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@link ImageReader} against images made by {@code qemu-img convert -c}. */
class ImageReaderTest {
  @TempDir static Path dir;

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({"zstd, 4096", "zstd, 65536", "zstd, 2097152", "zlib, 4096", "zlib, 65536", "zlib, 2097152"})
  void everyByteReadsBackIdentical(String codec, int clusterSize) {
    Path image = RealImages.image(dir, codec, clusterSize);
    Path raw = RealImages.raw(dir, 1);
    ImageProbe probe = new ImageProbe(image);
    // The disk is built so each kind of cluster is there to be read.
    assertTrue(probe.count(true) > 0, "compressed clusters");
    assertTrue(probe.count(false) > 0, "raw clusters");
    assertTrue(probe.mappings.size() < (RealImages.SIZE + clusterSize - 1) / clusterSize, "unallocated clusters");

    assertEquals(-1, ImageReader.firstDifference(raw, image));
    // Odd-sized reads that start and end mid-cluster and mid-sector, straight from the reader.
    byte[] expected = RealImages.readRaw(raw, 0, (int) RealImages.SIZE);
    try (ImageReader r = ImageReader.open(image)) {
      assertEquals(RealImages.SIZE, r.virtualSize());
      assertEquals(Codec.valueOf(codec.toUpperCase()), r.header().codec());
      assertEquals(clusterSize, r.header().clusterSize());
      ByteBuffer buf = ByteBuffer.allocate(100_003);
      for (long pos = 0; pos < RealImages.SIZE; pos += buf.capacity()) {
        buf.clear().limit((int) Math.min(buf.capacity(), RealImages.SIZE - pos));
        r.read(pos, buf);
        assertEquals(buf.limit(), buf.position(), "position moves to the limit");
        int m = Arrays.mismatch(expected, (int) pos, (int) pos + buf.limit(), buf.array(), 0, buf.limit());
        assertEquals(-1, m, "first difference in the read at guest 0x" + Long.toHexString(pos));
      }
    }
  }

  @Test
  void randomSmallReadsMatchTheRawDisk() {
    Path image = RealImages.image(dir, "zstd", 65536);
    byte[] expected = RealImages.readRaw(RealImages.raw(dir, 1), 0, (int) RealImages.SIZE);
    SplittableRandom rnd = new SplittableRandom(42);
    try (ImageReader r = ImageReader.open(image)) {
      for (int i = 0; i < 2000; i++) {
        int len = 1 + rnd.nextInt(200_000);
        long pos = rnd.nextLong(RealImages.SIZE - len + 1);
        byte[] got = read(r, pos, len);
        assertEquals(-1, Arrays.mismatch(expected, (int) pos, (int) pos + len, got, 0, len), "at 0x" + Long.toHexString(pos));
      }
    }
  }

  @Test
  void concurrentReadsAllSeeTheRightBytes() throws Exception {
    Path image = RealImages.image(dir, "zstd", 4096); // small clusters: many L2 tables, evictions
    byte[] expected = RealImages.readRaw(RealImages.raw(dir, 1), 0, (int) RealImages.SIZE);
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try (ImageReader r = ImageReader.open(image)) {
      List<Future<?>> results = new ArrayList<>();
      for (int t = 0; t < 8; t++) {
        SplittableRandom rnd = new SplittableRandom(t);
        results.add(pool.submit(() -> {
          for (int i = 0; i < 500; i++) {
            int len = 1 + rnd.nextInt(50_000);
            long pos = rnd.nextLong(RealImages.SIZE - len + 1);
            byte[] got = read(r, pos, len);
            assertEquals(-1, Arrays.mismatch(expected, (int) pos, (int) pos + len, got, 0, len));
          }
          return null;
        }));
      }
      for (Future<?> f : results) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void readsIntoDirectBuffersAtAnyPosition() {
    Path image = RealImages.image(dir, "zlib", 65536);
    byte[] expected = RealImages.readRaw(RealImages.raw(dir, 1), 0x7ff00, 0x30000);
    ByteBuffer direct = ByteBuffer.allocateDirect(0x30000 + 10).position(10);
    try (ImageReader r = ImageReader.open(image)) {
      r.read(0x7ff00, direct);
    }
    byte[] got = new byte[0x30000];
    direct.position(10).get(got);
    assertEquals(-1, Arrays.mismatch(expected, got));
  }

  @Test
  void refusesReadsOutsideTheVirtualSize() {
    try (ImageReader r = ImageReader.open(RealImages.image(dir, "zstd", 65536))) {
      assertThrows(IllegalArgumentException.class, () -> r.read(RealImages.SIZE - 10, ByteBuffer.allocate(11)));
      assertThrows(IllegalArgumentException.class, () -> r.read(-1, ByteBuffer.allocate(1)));
      r.read(RealImages.SIZE - 10, ByteBuffer.allocate(10));
      r.read(RealImages.SIZE, ByteBuffer.allocate(0));
    }
  }

  @Test
  void zeroFlagOnAStandardEntryReadsAsZeros() {
    Path image = RealImages.copy(dir, RealImages.image(dir, "zstd", 65536), "zero-flag.qcow2");
    ImageProbe.Mapping m = new ImageProbe(image).firstStandard();
    RealImages.pokeLong(image, m.location(), m.entry() | L2Entry.ZERO);
    long guest = m.guestCluster() * 65536;
    try (ImageReader r = ImageReader.open(image)) {
      assertEquals(-1, Arrays.mismatch(new byte[65536], read(r, guest, 65536)));
      // Neighbours are untouched.
      byte[] after = RealImages.readRaw(RealImages.raw(dir, 1), guest + 65536, 4096);
      assertEquals(-1, Arrays.mismatch(after, read(r, guest + 65536, 4096)));
    }
    // qemu-img agrees: the poked image is the raw disk with that cluster zeroed.
    Path zeroed = RealImages.copy(dir, RealImages.raw(dir, 1), "zero-flag.raw");
    RealImages.poke(zeroed, guest, new byte[65536]);
    QemuImg.assertIdentical(zeroed, image);
    assertEquals(-1, ImageReader.firstDifference(zeroed, image));
  }

  @Test
  void activeLayerIsReadWhenASnapshotSharesItsClusters() throws Exception {
    // QEMU rewrites part of the active layer after a snapshot: shared clusters lose the copied
    // bit, new ones are allocated, zero writes set the zero flag, a discard unmaps a cluster.
    Path image = RealImages.copy(dir, RealImages.image(dir, "zstd", 4096), "snapshot.qcow2");
    run("qemu-img", "snapshot", "-c", "before", image.toString());
    run("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 100k 300k", "-c", "write -z 1M 64k",
        "-c", "write -z -u 2M 8k", "-c", "discard 3M 4k", image.toString());
    Path expected = RealImages.copy(dir, RealImages.raw(dir, 1), "snapshot.raw");
    byte[] pattern = new byte[300 << 10];
    Arrays.fill(pattern, (byte) 0x5a);
    RealImages.poke(expected, 100 << 10, pattern);
    RealImages.poke(expected, 1 << 20, new byte[64 << 10]);
    RealImages.poke(expected, 2 << 20, new byte[8 << 10]);
    RealImages.poke(expected, 3 << 20, new byte[4 << 10]);
    QemuImg.assertIdentical(expected, image);
    assertTrue(new ImageProbe(image).mappings.stream().anyMatch(m -> (m.entry() & L2Entry.ZERO) != 0
        && !m.compressed()), "a zero-flagged entry to read");
    assertEquals(-1, ImageReader.firstDifference(expected, image));
  }

  /** Runs a QEMU tool; skips the test where it is missing (qemu-io comes with qemu-img). */
  private static void run(String... command) throws Exception {
    QemuImg.assumeAvailable();
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    assertEquals(0, p.waitFor(), String.join(" ", command) + ": " + out);
  }

  static byte[] read(ImageReader r, long pos, int len) {
    ByteBuffer b = ByteBuffer.allocate(len);
    r.read(pos, b);
    return b.array();
  }
}
