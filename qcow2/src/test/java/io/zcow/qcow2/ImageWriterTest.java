package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.CorruptException;
import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The image writer end to end: clusters fed in any order from several threads, every image checked
 * by the real qemu-img (check: no errors, no leaks; compare: identical to the source).
 */
class ImageWriterTest {
  @TempDir static Path shared;
  @TempDir Path dir;
  static Path mixed;

  @BeforeAll
  static void disks() throws Exception {
    mixed = shared.resolve("mixed.raw");
    Disks.mixed(mixed, 24L * 1024 * 1024 + 4608, 7);
  }

  private static ImageOptions options(long size, int cs) {
    ImageGeometry g = ImageGeometry.forSource(size, cs);
    // Small ranges and cache so L2 completion, ring wrap and backpressure all happen.
    return ImageOptions.defaults(g)
        .withRangeBytes(Math.max(cs, 1L << 20))
        .withCacheBytes(Math.max(8L * cs, 1L << 20));
  }

  private Path write(Path raw, ImageOptions o, long seed, int threads) throws Exception {
    Path img = dir.resolve("image-" + seed + ".qcow2");
    ImageWriter w = ImageWriter.create(img, o);
    ImageFeeder.feed(w, ImageFeeder.entries(raw, o.geometry().clusterSize(), 3), seed, threads);
    assertTrue(w.isComplete());
    w.finish();
    return img;
  }

  @ParameterizedTest(name = "{0} bytes/cluster, target cache {1}, write cache {2}")
  @CsvSource({
    "4096, DIRECT, true", "65536, DIRECT, true", "2097152, DIRECT, true",
    "65536, WRITEBACK, true", "65536, DIRECT, false", "65536, WRITEBACK, false", "4096, DIRECT, false"
  })
  void writesCleanIdenticalImageInEveryMode(int cs, TargetCache cache, boolean writeCache) throws Exception {
    long size = Files.size(mixed);
    ImageOptions o = options(size, cs).withTargetCache(cache).withWriteCache(writeCache);
    Path img = write(mixed, o, 11, 3);
    QemuImg.assertClean(img);
    QemuImg.assertIdentical(mixed, img);
    assertFalse(Files.exists(ImageWriter.partPath(img)), "TARGET.part is renamed away");
  }

  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = {1, 2, 3})
  void acceptsClustersInAnyOrderFromManyThreads(long seed) throws Exception {
    Path img = write(mixed, options(Files.size(mixed), 65536), seed, 4);
    QemuImg.assertClean(img);
    QemuImg.assertIdentical(mixed, img);
  }

  @Test
  void firstArrivalWinsAndDuplicatesAreCounted() throws Exception {
    ImageOptions o = options(Files.size(mixed), 65536);
    List<ImageFeeder.Entry> entries = ImageFeeder.entries(mixed, 65536, 3);
    Path img = dir.resolve("dup.qcow2");
    ImageWriter w = ImageWriter.create(img, o);
    ImageFeeder.feed(w, entries.subList(0, entries.size() / 2), 5, 2);
    // A different payload for an already accepted cluster is refused quietly.
    ImageFeeder.Entry first = entries.stream().filter(e -> e.kind() == ClusterKind.COMPRESSED).findFirst().orElseThrow();
    assertEquals(PutResult.DUPLICATE, w.put(first.index(), ClusterKind.RAW, ByteBuffer.allocate(65536)));
    ImageFeeder.feed(w, entries, 6, 2); // everything again: the first half are duplicates
    assertEquals(entries.size() / 2 + 1, w.stats().duplicates());
    w.finish();
    QemuImg.assertClean(img);
    QemuImg.assertIdentical(mixed, img);
  }

  @Test
  void refusesBadPayloadsBeforeAllocating() throws Exception {
    ImageOptions o = options(Files.size(mixed), 65536).withVerifyPayloads(true);
    Path img = dir.resolve("bad.qcow2");
    ImageWriter w = ImageWriter.create(img, o);
    long clusters = o.geometry().guestClusters();
    assertThrows(CorruptException.class, () -> w.put(clusters, ClusterKind.RAW, ByteBuffer.allocate(65536)));
    assertThrows(CorruptException.class, () -> w.put(-1, ClusterKind.ZERO, ByteBuffer.allocate(0)));
    assertThrows(CorruptException.class, () -> w.put(0, ClusterKind.RAW, ByteBuffer.allocate(100)));
    assertThrows(CorruptException.class, () -> w.put(0, ClusterKind.COMPRESSED, ByteBuffer.allocate(65536)));
    assertThrows(CorruptException.class, () -> w.put(0, ClusterKind.COMPRESSED, ByteBuffer.allocate(0)));
    // Garbage that is not a zstd frame, and a valid frame of the wrong size.
    assertThrows(CorruptException.class, () -> w.put(0, ClusterKind.COMPRESSED, ByteBuffer.wrap(new byte[] {1, 2, 3, 4, 5})));
    byte[] small;
    try (ZstdClusterCompressor z = new ZstdClusterCompressor(4096, 3)) {
      ByteBuffer out = ByteBuffer.allocate(4096);
      small = java.util.Arrays.copyOf(out.array(), z.compress(ByteBuffer.allocate(4096), out));
    }
    assertThrows(CorruptException.class, () -> w.put(0, ClusterKind.COMPRESSED, ByteBuffer.wrap(small)));
    assertEquals(0, w.stats().guestClustersDone());
    assertEquals(o.geometry().firstFreeCluster() + 1, w.stats().hostBytes() / 65536, "nothing allocated but the first refcount block");
    // The refused clusters still arrive later, correctly, and nothing leaked.
    ImageFeeder.feed(w, ImageFeeder.entries(mixed, 65536, 3), 9, 2);
    w.finish();
    QemuImg.assertClean(img);
    QemuImg.assertIdentical(mixed, img);
  }

  @ParameterizedTest(name = "cluster size {0}, write cache {1}")
  @CsvSource({"65536, true", "4096, true", "2097152, true", "65536, false"})
  void resumesFromCheckpointAfterCrash(int cs, boolean writeCache) throws Exception {
    ImageOptions o = options(Files.size(mixed), cs).withWriteCache(writeCache);
    List<ImageFeeder.Entry> entries = ImageFeeder.entries(mixed, cs, 3);
    Path img = dir.resolve("resume.qcow2");
    ImageWriter w = ImageWriter.create(img, o);
    int half = entries.size() / 2;
    ImageFeeder.feed(w, entries.subList(0, half), 21, 3);
    Checkpoint cp = Checkpoint.fromBytes(w.checkpoint().toBytes());
    w.checkpointCommitted(cp);
    // Work after the checkpoint that is then lost: written to the file, never committed.
    ImageFeeder.feed(w, entries.subList(half, entries.size() * 3 / 4), 22, 3);
    w.checkpoint(); // a later checkpoint that "never committed"
    ImageFeeder.feed(w, entries.subList(entries.size() * 3 / 4, entries.size() - 3), 23, 1);
    w.close(); // crash: no finish

    ImageWriter again = ImageWriter.resume(img, o, cp);
    assertEquals(cp.guestClustersDone(), again.stats().guestClustersDone());
    ImageFeeder.feed(again, entries, 24, 3); // everything is sent again; what the checkpoint had is a duplicate
    assertTrue(again.isComplete());
    again.finish();
    QemuImg.assertClean(img);
    QemuImg.assertIdentical(mixed, img);
  }

  @Test
  void sparseImageNeedsNoL2TablesForHoles() throws Exception {
    long size = 8L << 30; // 8 GiB, one data cluster
    ImageGeometry g = ImageGeometry.forSource(size, 65536);
    Path img = dir.resolve("sparse.qcow2");
    ImageWriter w = ImageWriter.create(img, ImageOptions.defaults(g));
    byte[] cluster = new byte[65536];
    java.util.Arrays.fill(cluster, (byte) 7);
    w.putZeros(0, 100);
    w.put(100, ClusterKind.RAW, ByteBuffer.wrap(cluster));
    w.putZeros(101, g.guestClusters() - 101);
    w.finish();
    QemuImg.assertClean(img);
    Path raw = dir.resolve("sparse.raw");
    try (var f = new java.io.RandomAccessFile(raw.toFile(), "rw")) {
      f.setLength(size);
      f.seek(100L * 65536);
      f.write(cluster);
    }
    QemuImg.assertIdentical(raw, img);
    assertTrue(Files.size(img) < (1 << 20), "image of one cluster is small: " + Files.size(img));
  }

  @Test
  void oneSectorAndEmptyDisks() throws Exception {
    Path raw = dir.resolve("one.raw");
    Files.write(raw, "x".repeat(512).getBytes());
    Path img = write(raw, options(512, 65536), 0, 1);
    QemuImg.assertClean(img);
    QemuImg.assertIdentical(raw, img);

    Path empty = dir.resolve("empty.raw");
    Files.write(empty, new byte[0]);
    Path img0 = dir.resolve("empty.qcow2");
    ImageWriter w = ImageWriter.create(img0, ImageOptions.defaults(ImageGeometry.forSource(0, 65536)));
    assertTrue(w.isComplete());
    w.finish();
    QemuImg.assertClean(img0);
    QemuImg.assertIdentical(empty, img0);
  }

  @Test
  void refusesExistingPartFileAndBadGeometry() throws Exception {
    Path img = dir.resolve("x.qcow2");
    Files.write(ImageWriter.partPath(img), new byte[] {1});
    assertThrows(BadInputException.class, () -> ImageWriter.create(img, options(4096, 65536)));
    assertEquals(1, Files.size(ImageWriter.partPath(img)), "left untouched");
    assertThrows(BadInputException.class, () -> ImageGeometry.forSource(16L << 40, 4096));
    assertThrows(BadInputException.class, () -> ImageGeometry.forSource(1 << 20, 1024));
  }

  @Test
  void finishedWritersFreeTheirCacheEvenWhileStillReferenced() throws Exception {
    // A long-running writer keeps its finished jobs around; their caches must not pile up.
    List<ImageWriter> kept = new java.util.ArrayList<>();
    ImageGeometry g = ImageGeometry.forSource(1 << 20, 65536);
    long before = directBytesAfterGc();
    for (int i = 0; i < 4; i++) {
      ImageWriter w = ImageWriter.create(dir.resolve("kept-" + i + ".qcow2"), ImageOptions.defaults(g).withCacheBytes(256L << 20));
      w.putZeros(0, g.guestClusters());
      w.finish();
      kept.add(w);
    }
    long grown = directBytesAfterGc() - before;
    assertEquals(4, kept.size());
    assertTrue(grown < (64L << 20), "direct memory still held by 4 finished writers: " + grown + " bytes");
    QemuImg.assertClean(dir.resolve("kept-3.qcow2"));
  }

  /** Direct buffer memory in use once unreachable buffers have been collected (bounded wait). */
  private static long directBytesAfterGc() throws InterruptedException {
    java.lang.management.BufferPoolMXBean direct = java.lang.management.ManagementFactory
        .getPlatformMXBeans(java.lang.management.BufferPoolMXBean.class).stream()
        .filter(b -> b.getName().equals("direct")).findFirst().orElseThrow();
    long used = direct.getMemoryUsed();
    for (int i = 0; i < 20; i++) {
      System.gc();
      Thread.sleep(50);
      long now = direct.getMemoryUsed();
      if (now == used && i > 2) {
        break;
      }
      used = now;
    }
    return used;
  }

  @Test
  void abortRemovesEverything() throws Exception {
    Path img = dir.resolve("aborted.qcow2");
    ImageWriter w = ImageWriter.create(img, options(Files.size(mixed), 65536));
    ImageFeeder.feed(w, ImageFeeder.entries(mixed, 65536, 3).subList(0, 50), 3, 1);
    w.checkpoint();
    w.abort();
    try (var s = Files.list(dir)) {
      assertEquals(List.of(), s.toList());
    }
  }
}
