package io.zcow.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class QemuImgTest {

  @TempDir Path dir;

  @BeforeEach
  void needsQemuImg() {
    QemuImg.assumeAvailable();
  }

  @ParameterizedTest
  @CsvSource({"zstd, 65536", "zlib, 65536", "zstd, 4096", "zlib, 2097152"})
  void imageQemuImgMakesIsCleanAndIdenticalToItsSource(String codec, int clusterSize) {
    Path raw = Disks.mixed(dir.resolve("disk.raw"), 24L * (1 << 20) + 123, 1);
    Path img = dir.resolve("disk.qcow2");
    QemuImg.convert(raw, img, codec, clusterSize);
    QemuImg.CheckResult r = QemuImg.check(img);
    assertTrue(r.clean(), r.toString());
    assertEquals(0, r.exitCode());
    QemuImg.assertClean(img);
    assertTrue(QemuImg.compare(raw, img));
    QemuImg.assertIdentical(raw, img);
    String info = QemuImg.info(img);
    assertTrue(info.contains("\"compression-type\": \"" + codec + "\""), info);
    assertEquals(clusterSize, QemuImg.jsonLong(info, "cluster-size"));
  }

  @Test
  void compareSeesOneChangedByte() throws IOException {
    Path raw = Disks.alternating(dir.resolve("a.raw"), 4L << 20, 65536, 2);
    Path img = dir.resolve("a.qcow2");
    QemuImg.convert(raw, img, "zstd", 65536);
    poke(raw, 3_000_001, (byte) 0x42);
    assertFalse(QemuImg.compare(raw, img));
    AssertionError e = assertThrows(AssertionError.class, () -> QemuImg.assertIdentical(raw, img));
    assertTrue(e.getMessage().contains("mismatch"), e.getMessage());
  }

  @Test
  void compareOfAMissingImageIsAnError() {
    Path raw = Disks.random(dir.resolve("r.raw"), 512, 1);
    assertThrows(IllegalStateException.class, () -> QemuImg.compare(raw, dir.resolve("none")));
  }

  @Test
  void checkCountsLeaksAndCorruptions() throws IOException {
    Path raw = Disks.random(dir.resolve("r.raw"), 1 << 20, 3);
    Path img = dir.resolve("r.qcow2");
    QemuImg.convert(raw, img, "zstd", 65536);

    // The refcount of host cluster 0 (the header) is the first 16-bit entry of the first
    // refcount block: 2 is a leak (too high), 0 a corruption (too low).
    long block = refcountBlockOffset(img);
    pokeShort(img, block, (short) 2);
    QemuImg.CheckResult leak = QemuImg.check(img);
    assertEquals(3, leak.exitCode(), leak.output());
    assertEquals(1, leak.leaks());
    assertEquals(0, leak.corruptions());
    assertFalse(leak.clean());
    AssertionError e = assertThrows(AssertionError.class, () -> QemuImg.assertClean(img));
    assertTrue(e.getMessage().contains("leaks 1"), e.getMessage());

    pokeShort(img, block, (short) 0);
    QemuImg.CheckResult corrupt = QemuImg.check(img);
    assertEquals(2, corrupt.exitCode(), corrupt.output());
    assertTrue(corrupt.corruptions() >= 1, corrupt.output());
  }

  @Test
  void checkOfSomethingThatIsNotQcow2DoesNotThrow() {
    Path raw = Disks.random(dir.resolve("r.raw"), 65536, 3);
    QemuImg.CheckResult r = QemuImg.check(raw);
    assertFalse(r.clean());
    assertEquals(1, r.exitCode(), r.output());
  }

  @Test
  void convertRejectsBadArguments() {
    Path raw = dir.resolve("x");
    assertThrows(IllegalArgumentException.class, () -> QemuImg.convert(raw, raw, "lz4", 65536));
    assertThrows(IllegalArgumentException.class, () -> QemuImg.convert(raw, raw, "zstd", 65535));
  }

  @Test
  void parsesTheFieldsOfCheckOutput() {
    String json =
        "{\n    \"image-end-offset\": 262144,\n    \"total-clusters\": 16,\n"
            + "    \"check-errors\": 0,\n    \"leaks\": 3,\n    \"corruptions-fixed\": 9,\n"
            + "    \"filename\": \"x.qcow2\",\n    \"format\": \"qcow2\"\n}\n";
    assertEquals(3, QemuImg.jsonLong(json, "leaks"));
    assertEquals(0, QemuImg.jsonLong(json, "corruptions"));
    assertEquals(0, QemuImg.jsonLong(json, "check-errors"));
  }

  private static long refcountBlockOffset(Path img) throws IOException {
    ByteBuffer header = ByteBuffer.wrap(DisksTest.read(img, 0, 112));
    long table = header.getLong(48);
    return ByteBuffer.wrap(DisksTest.read(img, table, 8)).getLong();
  }

  private static void poke(Path p, long offset, byte b) throws IOException {
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.wrap(new byte[] {b}), offset);
    }
  }

  private static void pokeShort(Path p, long offset, short v) throws IOException {
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.allocate(2).putShort(0, v), offset);
    }
  }
}
