package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link ImageReader#firstDifference}, the heart of {@code zcow verify}. */
class FirstDifferenceTest {
  private static final int CS = 65536;

  @TempDir static Path shared;
  @TempDir Path dir;

  @Test
  void identicalImageHasNoDifference() {
    assertEquals(-1, ImageReader.firstDifference(RealImages.raw(shared, 1), RealImages.image(shared, "zstd", CS)));
  }

  @Test
  void changedByteIsFoundAtItsOffset() {
    Path raw = RealImages.copy(dir, RealImages.raw(shared, 1), "changed.raw");
    long at = 13 * RealImages.MIB + 12345; // inside compressed clusters
    byte[] b = RealImages.readRaw(raw, at, 1);
    b[0] ^= 1;
    RealImages.poke(raw, at, b);
    assertEquals(at, ImageReader.firstDifference(raw, RealImages.image(shared, "zstd", CS)));
  }

  @Test
  void dataWhereTheImageHasAHoleIsADifference() {
    Path raw = RealImages.copy(dir, RealImages.raw(shared, 1), "filled.raw");
    RealImages.poke(raw, 5 * RealImages.MIB + 7, new byte[] {42}); // the image leaves 4-8 MiB unallocated
    assertEquals(5 * RealImages.MIB + 7, ImageReader.firstDifference(raw, RealImages.image(shared, "zlib", 4096)));
  }

  @Test
  void rawSizeThatIsNotASectorMultipleMatchesTheRoundedImage() {
    Path raw = dir.resolve("odd.raw");
    io.zcow.testkit.Disks.mixed(raw, 1_000_003, 7);
    Path image = dir.resolve("odd.qcow2");
    QemuImg.convert(raw, image, "zstd", CS);
    try (ImageReader r = ImageReader.open(image)) {
      assertEquals(1_000_448, r.virtualSize());
    }
    assertEquals(-1, ImageReader.firstDifference(raw, image));
  }

  @Test
  void rawLongerThanTheImageDiffersAtTheVirtualSize() throws IOException {
    Path raw = RealImages.copy(dir, RealImages.raw(shared, 1), "longer.raw");
    try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.WRITE)) {
      ch.write(java.nio.ByteBuffer.wrap(new byte[1]), RealImages.SIZE); // one zero byte more
    }
    assertEquals(RealImages.SIZE, ImageReader.firstDifference(raw, RealImages.image(shared, "zstd", CS)));
  }

  @Test
  void imageLongerThanTheRoundedRawDiffersWhereTheRawEnds() throws IOException {
    // The image's last 100 KiB are random: the first byte past a shortened raw file is non-zero.
    Path raw = RealImages.copy(dir, RealImages.raw(shared, 1), "shorter.raw");
    long cut = RealImages.SIZE - 4096 - 100;
    truncate(raw, cut);
    assertEquals(cut, ImageReader.firstDifference(raw, RealImages.image(shared, "zstd", CS)));
  }

  @Test
  void roundingTailOfTheImageMustReadAsZeros() throws IOException {
    // Raw cut 100 bytes short of the image's size: the image holds random bytes there.
    Path raw = RealImages.copy(dir, RealImages.raw(shared, 1), "tail.raw");
    long cut = RealImages.SIZE - 100;
    truncate(raw, cut);
    byte[] tail = RealImages.readRaw(RealImages.raw(shared, 1), cut, 100);
    int firstNonZero = 0;
    while (tail[firstNonZero] == 0) {
      firstNonZero++;
    }
    assertEquals(cut + firstNonZero, ImageReader.firstDifference(raw, RealImages.image(shared, "zstd", CS)));
  }

  @Test
  void imageLongerThanTheRoundedRawDiffersAtTheRoundedSizeEvenWhenZero() throws IOException {
    // 4-8 MiB reads as zeros: a raw file ending at 5 MiB + 100 differs at 5 MiB + 512.
    Path raw = RealImages.copy(dir, RealImages.raw(shared, 1), "zero-tail.raw");
    truncate(raw, 5 * RealImages.MIB + 100);
    assertEquals(5 * RealImages.MIB + 512, ImageReader.firstDifference(raw, RealImages.image(shared, "zstd", CS)));
  }

  private static void truncate(Path file, long size) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ch.truncate(size);
    }
  }
}
