package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.CorruptException;
import io.zcow.testkit.QemuImg;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link ImageCheck} against qemu-img: sound images of every refcount width pass, and each
 * corruption poked in is one that {@code qemu-img check} also counts as a corruption.
 */
class ImageCheckTest {
  private static final int CS = 65536;

  @TempDir static Path shared;
  @TempDir Path dir;

  @ParameterizedTest(name = "{0} {1}-byte clusters, refcount_bits {2}")
  @CsvSource({"zstd, 65536, 16", "zlib, 4096, 16", "zstd, 2097152, 16", "zstd, 65536, 8", "zlib, 4096, 64"})
  void soundCompressedImagesPass(String codec, int clusterSize, int refcountBits) {
    Path image = RealImages.copy(dir, RealImages.image(shared, codec, clusterSize), "sound.qcow2");
    if (refcountBits != 16) {
      QemuImg.amend(image, "refcount_bits=" + refcountBits);
    }
    QemuImg.assertClean(image);
    assertDoesNotThrow(() -> ImageCheck.metadata(image));
  }

  @ParameterizedTest(name = "refcount_bits {0}")
  @CsvSource({"16", "1", "4"})
  void anOverlayWithStandardAndZeroClustersPasses(int refcountBits) {
    Path image = overlay();
    if (refcountBits != 16) {
      QemuImg.amend(image, "refcount_bits=" + refcountBits);
    }
    QemuImg.assertClean(image);
    assertDoesNotThrow(() -> ImageCheck.metadata(image));
  }

  @Test
  void aCompressedPayloadCountedFreeIsCorrupt() {
    Path image = RealImages.copy(dir, RealImages.image(shared, "zstd", CS), "poked.qcow2");
    long host = L2Entry.compressedOffset(new ImageProbe(image).firstCompressed().entry(), 16);
    setRefcount(image, host, 0);
    assertCorruptAsQemuSees(image, hex(host & -CS), "compressed payload", "refcount is 0");
  }

  @Test
  void aDataClusterCountedFreeIsCorrupt() {
    Path image = overlay();
    long host = new ImageProbe(image).firstStandard().entry() & L2Entry.OFFSET_MASK;
    setRefcount(image, host, 0);
    assertCorruptAsQemuSees(image, hex(host), "data cluster", "refcount is 0");
  }

  @Test
  void aCopiedDataClusterSharedTwiceIsCorrupt() {
    Path image = overlay();
    long host = new ImageProbe(image).firstStandard().entry() & L2Entry.OFFSET_MASK;
    setRefcount(image, host, 2);
    assertCorruptAsQemuSees(image, hex(host), "copied bit", "refcount of 2");
  }

  @Test
  void anL2TableCountedFreeIsCorrupt() {
    Path image = RealImages.copy(dir, RealImages.image(shared, "zstd", CS), "poked.qcow2");
    long location = new ImageProbe(image).l1Locations.get(0);
    long l2 = RealImages.readLong(image, location) & L2Entry.OFFSET_MASK;
    setRefcount(image, l2, 0);
    assertCorruptAsQemuSees(image, hex(l2), "L2 table", "refcount is 0");
  }

  @Test
  void aRefcountBlockCountedFreeIsCorrupt() {
    Path image = RealImages.copy(dir, RealImages.image(shared, "zstd", CS), "poked.qcow2");
    long block = RealImages.readLong(image, new ImageProbe(image).header.refcountTableOffset());
    setRefcount(image, block, 0);
    assertCorruptAsQemuSees(image, hex(block), "refcount block 0", "refcount is 0");
  }

  @Test
  void aDataClusterPastTheEndIsCorrupt() {
    Path image = overlay();
    ImageProbe.Mapping m = new ImageProbe(image).firstStandard();
    long beyond = 1L << 40;
    RealImages.pokeLong(image, m.location(), beyond | L2Entry.COPIED);
    assertCorruptAsQemuSees(image, hex(beyond), "past the end");
  }

  /** An empty overlay on a compressed image, with raw data written into it and a zeroed cluster. */
  private Path overlay() {
    RealImages.copy(dir, RealImages.image(shared, "zstd", CS), "base.qcow2");
    Path top = dir.resolve("top.qcow2");
    QemuImg.createOverlay(top, "base.qcow2");
    QemuImg.io(top, "write -P 0xcc 1M 192k", "write -z 4M 64k", "write -P 0x5a 20M 4k");
    return top;
  }

  /** Sets the 16-bit refcount of the host cluster holding {@code offset}, as qemu-img lays it out. */
  private static void setRefcount(Path image, long offset, int value) {
    Header h = new ImageProbe(image).header;
    long cluster = offset / h.clusterSize();
    long perBlock = h.clusterSize() / 2L;
    long block = RealImages.readLong(image, h.refcountTableOffset() + 8 * (cluster / perBlock));
    RealImages.poke(image, block + 2 * (cluster % perBlock), ByteBuffer.allocate(2).putShort((short) value).array());
  }

  private static void assertCorruptAsQemuSees(Path image, String... parts) {
    QemuImg.CheckResult qemu = QemuImg.check(image);
    assertTrue(qemu.corruptions() > 0, "qemu-img check should see a corruption:\n" + qemu.output());
    CorruptException e = assertThrows(CorruptException.class, () -> ImageCheck.metadata(image));
    assertTrue(e.getMessage().startsWith(image.toString()), e.getMessage());
    for (String part : parts) {
      assertTrue(e.getMessage().contains(part), "'" + part + "' in: " + e.getMessage());
    }
  }

  private static String hex(long v) {
    return "0x" + Long.toHexString(v);
  }
}
