package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.CorruptException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Bytes poked into real qemu-img images, as QEMU's iotests do: each is a CorruptException naming offsets. */
class ImageReaderCorruptionTest {
  private static final int CS = 65536;

  @TempDir static Path shared;
  @TempDir Path dir;

  private Path copy(String codec, int clusterSize) {
    return RealImages.copy(dir, RealImages.image(shared, codec, clusterSize), "poked.qcow2");
  }

  @Test
  void badMagicIsNamedAtOffsetZero() {
    Path image = copy("zstd", CS);
    RealImages.poke(image, 0, new byte[] {'Q', 'F', 'I', 0});
    assertCorrupt(() -> ImageReader.open(image), "magic", "0x0");
  }

  @Test
  void aFileThatIsNotAnImageIsRefused() {
    Path raw = RealImages.raw(shared, 1);
    assertCorrupt(() -> ImageReader.open(raw), "magic", "0x0");
  }

  @Test
  void l1TableBeyondTheEndOfTheFileIsRefused() throws IOException {
    Path image = copy("zstd", CS);
    long beyond = (Files.size(image) / CS + 10) * CS;
    RealImages.pokeLong(image, 40, beyond);
    assertCorrupt(() -> ImageReader.open(image), "L1 table", hex(beyond), "past the end");
  }

  @Test
  void l2TableOffsetThatIsNotClusterAlignedIsRefused() {
    Path image = copy("zstd", CS);
    long location = new ImageProbe(image).l1Locations.get(0);
    long l1 = RealImages.readLong(image, location);
    RealImages.pokeLong(image, location, l1 + 512);
    assertCorrupt(() -> ImageReader.open(image), "L2 table", hex((l1 & L2Entry.OFFSET_MASK) + 512),
        "L1 entry at " + hex(location), "not cluster-aligned");
  }

  @Test
  void l2TableBeyondTheEndOfTheFileIsRefused() throws IOException {
    Path image = copy("zstd", 4096);
    long location = new ImageProbe(image).l1Locations.get(3);
    long beyond = (Files.size(image) / 4096 + 1) * 4096;
    RealImages.pokeLong(image, location, beyond | L2Entry.COPIED);
    assertCorrupt(() -> ImageReader.open(image), "L2 table at " + hex(beyond), "L1 entry at " + hex(location),
        "past the end");
  }

  @Test
  void reservedBitsInAnL1EntryAreRefused() {
    Path image = copy("zstd", CS);
    long location = new ImageProbe(image).l1Locations.get(0);
    RealImages.pokeLong(image, location, RealImages.readLong(image, location) | (1L << 60));
    assertCorrupt(() -> ImageReader.open(image), "L1 entry", hex(location), "reserved");
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({"zstd, 65536", "zlib, 4096", "zstd, 2097152"})
  void dataClusterPointingPastTheEndOfTheFileIsNamed(String codec, int clusterSize) throws IOException {
    Path image = copy(codec, clusterSize);
    ImageProbe.Mapping m = new ImageProbe(image).firstStandard();
    long beyond = (Files.size(image) / clusterSize + 16) * clusterSize;
    RealImages.pokeLong(image, m.location(), L2Entry.standard(beyond));
    long guest = m.guestCluster() * clusterSize;
    try (ImageReader r = ImageReader.open(image)) {
      assertCorrupt(() -> r.read(guest, ByteBuffer.allocate(512)),
          "data cluster at " + hex(beyond), "guest " + hex(guest), "L2 entry at " + hex(m.location()), "past the end");
      // The rest of the image still reads.
      r.read(0, ByteBuffer.allocate(4096));
    }
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({"zstd, 65536", "zlib, 4096", "zstd, 2097152"})
  void compressedPayloadPointingPastTheEndOfTheFileIsNamed(String codec, int clusterSize) throws IOException {
    Path image = copy(codec, clusterSize);
    ImageProbe.Mapping m = new ImageProbe(image).firstCompressed();
    int bits = Integer.numberOfTrailingZeros(clusterSize);
    long beyond = Files.size(image) + 4096 + 17;
    RealImages.pokeLong(image, m.location(), L2Entry.compressed(beyond, 300, bits));
    long guest = m.guestCluster() * clusterSize;
    try (ImageReader r = ImageReader.open(image)) {
      assertCorrupt(() -> r.read(guest, ByteBuffer.allocate(100)),
          "compressed payload at " + hex(beyond), "guest " + hex(guest), "past the end");
    }
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({"zstd, 65536", "zlib, 65536", "zstd, 4096", "zlib, 2097152"})
  void garbageInACompressedPayloadNamesGuestAndHostOffsets(String codec, int clusterSize) {
    Path image = copy(codec, clusterSize);
    ImageProbe.Mapping m = new ImageProbe(image).firstCompressed();
    int bits = Integer.numberOfTrailingZeros(clusterSize);
    long host = L2Entry.compressedOffset(m.entry(), bits);
    byte[] garbage = new byte[64];
    new Random(1).nextBytes(garbage);
    RealImages.poke(image, host, garbage);
    long guest = m.guestCluster() * clusterSize;
    try (ImageReader r = ImageReader.open(image)) {
      assertCorrupt(() -> r.read(guest + 1000, ByteBuffer.allocate(10)),
          "guest offset " + hex(guest), "host offset " + hex(host), "decompress");
    }
  }

  @Test
  void compressedEntryWithTheCopiedBitIsRefused() {
    Path image = copy("zstd", CS);
    ImageProbe.Mapping m = new ImageProbe(image).firstCompressed();
    RealImages.pokeLong(image, m.location(), m.entry() | L2Entry.COPIED);
    try (ImageReader r = ImageReader.open(image)) {
      assertCorrupt(() -> r.read(m.guestCluster() * CS, ByteBuffer.allocate(1)),
          "L2 entry", hex(m.location()), "copied");
    }
  }

  @Test
  void dataClusterOffsetThatIsNotClusterAlignedIsRefused() {
    Path image = copy("zstd", CS);
    ImageProbe.Mapping m = new ImageProbe(image).firstStandard();
    long unaligned = (m.entry() & L2Entry.OFFSET_MASK) + 4096;
    RealImages.pokeLong(image, m.location(), L2Entry.standard(unaligned));
    try (ImageReader r = ImageReader.open(image)) {
      assertCorrupt(() -> r.read(m.guestCluster() * CS, ByteBuffer.allocate(1)),
          hex(unaligned), hex(m.location()), "not cluster-aligned");
    }
  }

  @Test
  void reservedBitsInAnL2EntryAreRefused() {
    Path image = copy("zstd", CS);
    ImageProbe.Mapping m = new ImageProbe(image).firstStandard();
    RealImages.pokeLong(image, m.location(), m.entry() | (1L << 57));
    try (ImageReader r = ImageReader.open(image)) {
      assertCorrupt(() -> r.read(m.guestCluster() * CS, ByteBuffer.allocate(1)), hex(m.location()), "reserved");
    }
  }

  @Test
  void truncatedImageIsCorruptWhereDataIsMissing() throws IOException {
    Path image = copy("zstd", CS);
    ImageProbe probe = new ImageProbe(image);
    ImageProbe.Mapping last = probe.mappings.stream()
        .max((a, b) -> Long.compare(hostOf(a), hostOf(b))).orElseThrow();
    try (FileChannel ch = FileChannel.open(image, StandardOpenOption.WRITE)) {
      ch.truncate(hostOf(last) - 1024);
    }
    try (ImageReader r = ImageReader.open(image)) {
      assertCorrupt(() -> r.read(last.guestCluster() * CS, ByteBuffer.allocate(1)), "past the end");
    }
  }

  @Test
  void zstdImageWithoutItsCompressionTypeBitIsRefused() {
    Path image = copy("zstd", CS);
    RealImages.pokeLong(image, 72, 0);
    assertCorrupt(() -> ImageReader.open(image), "0x68", "bit 3");
  }

  @Test
  void missingBackingFileIsRefusedWithAClearMessage() {
    Path image = copy("zstd", CS);
    byte[] name = "nope.qcow2".getBytes(java.nio.charset.StandardCharsets.UTF_8);
    RealImages.poke(image, 0x300, name);
    RealImages.pokeLong(image, 8, 0x300);
    RealImages.poke(image, 16, java.nio.ByteBuffer.allocate(4).putInt(name.length).array());
    BadInputException e = assertThrows(BadInputException.class, () -> ImageReader.open(image));
    assertTrue(e.getMessage().contains("nope.qcow2, which is missing"), e.getMessage());
  }

  @Test
  void backingFileNameOutsideTheFileIsCorrupt() {
    Path image = copy("zstd", CS);
    RealImages.pokeLong(image, 8, 0x200);
    assertCorrupt(() -> ImageReader.open(image), "backing file name of 0 bytes at 0x200");
  }

  @Test
  void encryptedImageIsRefused() {
    Path image = copy("zstd", CS);
    RealImages.poke(image, 32, new byte[] {0, 0, 0, 2});
    assertCorrupt(() -> ImageReader.open(image), "encrypted");
  }

  @Test
  void missingFileIsBadInput() {
    BadInputException e = assertThrows(BadInputException.class, () -> ImageReader.open(dir.resolve("nope.qcow2")));
    assertTrue(e.getMessage().contains("no such file"), e.getMessage());
  }

  @Test
  void corruptImageMakesFirstDifferenceThrowRatherThanAnswer() {
    Path image = copy("zstd", CS);
    ImageProbe.Mapping m = new ImageProbe(image).firstCompressed();
    RealImages.poke(image, L2Entry.compressedOffset(m.entry(), 16), new byte[64]);
    assertCorrupt(() -> ImageReader.firstDifference(RealImages.raw(shared, 1), image), "does not decompress");
  }

  private static long hostOf(ImageProbe.Mapping m) {
    return m.compressed() ? L2Entry.compressedOffset(m.entry(), 16) : m.entry() & L2Entry.OFFSET_MASK;
  }

  private static String hex(long v) {
    return "0x" + Long.toHexString(v);
  }

  private static void assertCorrupt(Executable action, String... fragments) {
    CorruptException e = assertThrows(CorruptException.class, action);
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "'" + e.getMessage() + "' should contain '" + f + "'");
    }
    assertTrue(e.getMessage().contains("poked.qcow2") || e.getMessage().contains(".raw"),
        "names the image: " + e.getMessage());
  }

  @Test
  void probeSeesTheLayoutQemuWrote() {
    ImageProbe probe = new ImageProbe(RealImages.image(shared, "zstd", CS));
    assertEquals(CS, probe.header.clusterSize());
    assertTrue(probe.count(true) > 0 && probe.count(false) > 0);
  }
}
