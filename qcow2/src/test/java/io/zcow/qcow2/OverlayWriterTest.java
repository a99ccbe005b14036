package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Incremental overlays written by {@link ImageWriter} with a backing file, checked by the real
 * qemu-img: the chain reads back as the changed disk, the overlay checks clean, and only the
 * changed clusters are in the overlay (depth 0 in {@code qemu-img map}).
 */
class OverlayWriterTest {
  private static final int CS = 65536;
  private static final long MIB = 1L << 20;
  @TempDir Path dir;

  @Test
  void chainOfTwoOverlaysReadsAsEachDiskAndHoldsOnlyChangedClusters() throws Exception {
    QemuImg.assumeAvailable();
    Path disk0 = RealImages.raw(dir, 1);
    Path full = dir.resolve("full.qcow2");
    writeFull(disk0, full);
    QemuImg.assertIdentical(disk0, full);

    Path disk1 = copy(disk0, "disk1.raw");
    poke(disk1, 3 * CS + 100, random(40_000, 7));          // data into a data cluster
    poke(disk1, 9 * MIB, new byte[2 * CS]);                  // random clusters now zero
    poke(disk1, 12 * MIB + 5 * CS + 4096, random(4096, 8)); // a write smaller than a cluster
    poke(disk1, Files.size(disk1) - 700, random(700, 9));    // the partial last cluster
    Path inc1 = dir.resolve("inc1.qcow2");
    TreeSet<Long> changed1 = writeOverlay(full, disk0, disk1, inc1);
    assertEquals(5, changed1.size(), "clusters changed in disk1: " + changed1);
    QemuImg.assertOverlay(disk1, inc1, CS, changed1);

    Path disk2 = copy(disk1, "disk2.raw");
    poke(disk2, 3 * CS, new byte[CS]);                       // the cluster changed in inc1, now zero
    poke(disk2, 4 * MIB + 7 * CS, random(CS, 10));          // zeros now data
    Path inc2 = dir.resolve("inc2.qcow2");
    TreeSet<Long> changed2 = writeOverlay(inc1, disk1, disk2, inc2);
    assertEquals(2, changed2.size(), "clusters changed in disk2: " + changed2);
    QemuImg.assertOverlay(disk2, inc2, CS, changed2);
    // The older links still read as their own time.
    QemuImg.assertIdentical(disk1, inc1);
    QemuImg.assertIdentical(disk0, full);
    // zcow's own reader follows the chain too (zcow verify).
    assertEquals(-1, ImageReader.firstDifference(disk2, inc2));
    assertEquals(-1, ImageReader.firstDifference(disk1, inc1));
    assertTrue(ImageReader.firstDifference(disk1, inc2) >= 3 * CS);
    assertTrue(QemuImg.info(inc2).contains("\"backing-filename\": \"inc1.qcow2\""), QemuImg.info(inc2));
  }

  @Test
  void overlayOfAGrownSourceIsLargerAndItsTailIsChanged() throws Exception {
    QemuImg.assumeAvailable();
    Path disk0 = Disks.mixed(dir.resolve("disk0.raw"), 3 * MIB, 3);
    Path full = dir.resolve("full.qcow2");
    writeFull(disk0, full);
    Path disk1 = copy(disk0, "disk1.raw");
    poke(disk1, 3 * MIB + 2 * CS, random(CS + 512, 4)); // grows by 2 zero clusters, 1 data, 512 bytes
    Path inc = dir.resolve("inc.qcow2");
    TreeSet<Long> changed = writeOverlay(full, disk0, disk1, inc);
    QemuImg.assertOverlay(disk1, inc, CS, changed);
    assertEquals(List.of(48L, 49L, 50L, 51L), List.copyOf(changed));
    assertEquals(-1, ImageReader.firstDifference(disk1, inc));
  }

  @Test
  void refusesAPreviousImageThatCannotBeTheBackingFile() throws Exception {
    Path disk0 = Disks.mixed(dir.resolve("disk0.raw"), 2 * MIB, 5);
    Path full = dir.resolve("full.qcow2");
    writeFull(disk0, full);
    Path target = dir.resolve("sub").resolve("inc.qcow2");
    ImageGeometry same = ImageGeometry.forSource(2 * MIB, CS);

    assertEquals("../full.qcow2", BackingFile.of(full, target, same).name());
    String missing = assertThrows(BadInputException.class,
        () -> BackingFile.of(dir.resolve("nope.qcow2"), target, same)).getMessage();
    assertTrue(missing.contains("does not exist"), missing);
    String raw = assertThrows(BadInputException.class, () -> BackingFile.of(disk0, target, same)).getMessage();
    assertTrue(raw.contains("not a usable qcow2"), raw);
    String cluster = assertThrows(BadInputException.class,
        () -> BackingFile.of(full, target, ImageGeometry.forSource(2 * MIB, 2 * CS))).getMessage();
    assertTrue(cluster.contains("cluster size"), cluster);
    String shrunk = assertThrows(BadInputException.class,
        () -> BackingFile.of(full, target, ImageGeometry.forSource(2 * MIB - CS, CS))).getMessage();
    assertTrue(shrunk.contains("shrank"), shrunk);
    String itself = assertThrows(BadInputException.class,
        () -> BackingFile.of(full, dir.resolve("x/../full.qcow2"), same)).getMessage();
    assertTrue(itself.contains("the target itself"), itself);
    Path dirty = RealImages.copy(dir, full, "dirty.qcow2");
    RealImages.pokeLong(dirty, 72, Header.INCOMPAT_DIRTY | Header.INCOMPAT_COMPRESSION_TYPE);
    String d = assertThrows(BadInputException.class, () -> BackingFile.of(dirty, target, same)).getMessage();
    assertTrue(d.contains("not a clean"), d);
    Path disk1 = RealImages.copy(dir, disk0, "disk1.raw");
    poke(disk1, 0, random(512, 6));
    Path inc = dir.resolve("inc.qcow2");
    writeOverlay(full, disk0, disk1, inc);
    assertEquals("inc.qcow2", BackingFile.of(inc, dir.resolve("inc2.qcow2"), same).name());
    Files.move(full, dir.resolve("moved.qcow2"));
    String broken = assertThrows(BadInputException.class,
        () -> BackingFile.of(inc, dir.resolve("inc2.qcow2"), same)).getMessage();
    assertTrue(broken.contains("chain is broken"), broken);
    for (String m : List.of(missing, raw, cluster, shrunk, d, broken)) {
      assertFalse(m.contains("\n"), m);
    }
  }

  @Test
  void unchangedClustersNeedABackingFile() {
    ImageWriter w = ImageWriter.create(dir.resolve("plain.qcow2"),
        ImageOptions.defaults(ImageGeometry.forSource(MIB, CS)));
    try {
      assertThrows(IllegalStateException.class, () -> w.putUnchanged(0, 1));
    } finally {
      w.abort();
    }
  }

  private static void writeFull(Path raw, Path image) throws Exception {
    ImageOptions o = ImageOptions.defaults(ImageGeometry.forSource(Files.size(raw), CS)).withRangeBytes(4 * MIB);
    ImageWriter w = ImageWriter.create(image, o);
    ImageFeeder.feed(w, ImageFeeder.entries(raw, CS, 3), 0, 1);
    w.finish();
  }

  /**
   * Writes {@code image} as an overlay on {@code prevImage}: the clusters of {@code now} that
   * differ from {@code before} (the dirty bitmap a guest would have left), the rest unchanged.
   */
  static TreeSet<Long> writeOverlay(Path prevImage, Path before, Path now, Path image) throws Exception {
    ImageGeometry g = ImageGeometry.forSource(Files.size(now), CS);
    ImageOptions o = ImageOptions.defaults(g).withRangeBytes(4 * MIB).withBacking(BackingFile.of(prevImage, image, g));
    TreeSet<Long> changed = new TreeSet<>();
    ImageWriter w = ImageWriter.create(image, o);
    long oldClusters = (Files.size(before) + CS - 1) / CS;
    for (ImageFeeder.Entry e : ImageFeeder.entries(now, CS, 3)) {
      if (e.index() < oldClusters && !differs(before, now, e.index())) {
        w.putUnchanged(e.index(), 1);
      } else {
        changed.add(e.index());
        ImageFeeder.put(w, e);
      }
    }
    w.finish();
    return changed;
  }


  private static boolean differs(Path a, Path b, long cluster) throws IOException {
    return !java.util.Arrays.equals(read(a, cluster), read(b, cluster));
  }

  private static byte[] read(Path p, long cluster) throws IOException {
    try (FileChannel ch = FileChannel.open(p)) {
      ByteBuffer buf = ByteBuffer.allocate(CS);
      while (buf.hasRemaining() && ch.read(buf, cluster * CS + buf.position()) > 0) {
        // until the cluster or the file ends; the rest reads as zeros
      }
      return buf.array();
    }
  }

  private static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  private Path copy(Path from, String name) throws IOException {
    return Files.copy(from, dir.resolve(name));
  }

  private static void poke(Path file, long offset, byte[] bytes) {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.wrap(bytes), offset);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
