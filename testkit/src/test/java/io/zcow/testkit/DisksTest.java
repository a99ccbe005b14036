package io.zcow.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.zip.Deflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DisksTest {

  private static final int MIB = 1 << 20;
  private static final long ODD = 10L * MIB + 123;

  @TempDir Path dir;

  @Test
  void randomIsDeterministicOddSizedAndIncompressible() throws IOException {
    Path a = Disks.random(dir.resolve("a"), ODD, 42);
    Path b = Disks.random(dir.resolve("b"), ODD, 42);
    Path c = Disks.random(dir.resolve("c"), ODD, 43);
    assertEquals(ODD, Files.size(a));
    assertEquals(-1, Files.mismatch(a, b));
    assertEquals(0, Files.mismatch(a, c));
    byte[] head = read(a, 0, 64 * 1024);
    assertTrue(deflatedRatio(head) > 0.99, "random data should not compress");
  }

  @Test
  void writesSingleSectorAndEmptyFiles() throws IOException {
    assertEquals(512, Files.size(Disks.random(dir.resolve("r"), 512, 1)));
    assertEquals(0, Files.size(Disks.random(dir.resolve("e"), 0, 1)));
    assertEquals(1, Files.size(Disks.mixed(dir.resolve("m"), 1, 1)));
  }

  @Test
  void repeatedByteRepeatsTheByte() throws IOException {
    Path p = Disks.repeatedByte(dir.resolve("x"), 3 * MIB + 7, (byte) 0xA5);
    byte[] all = Files.readAllBytes(p);
    assertEquals(3 * MIB + 7, all.length);
    for (byte v : all) {
      assertEquals((byte) 0xA5, v);
    }
  }

  @Test
  void alternatingClustersSwitchBetweenCompressibleAndRandom() throws IOException {
    int cluster = 64 * 1024;
    Path p = Disks.alternating(dir.resolve("alt"), 8L * cluster + 100, cluster, 7);
    assertEquals(8L * cluster + 100, Files.size(p));
    for (int i = 0; i < 8; i++) {
      double ratio = deflatedRatio(read(p, (long) i * cluster, cluster));
      if (i % 2 == 0) {
        assertTrue(ratio < 0.5, "cluster " + i + " should compress, ratio " + ratio);
      } else {
        assertTrue(ratio > 0.99, "cluster " + i + " should not compress, ratio " + ratio);
      }
    }
    assertEquals(-1, Files.mismatch(p, Disks.alternating(dir.resolve("alt2"), 8L * cluster + 100, cluster, 7)));
  }

  @Test
  void sparseHasDataAtOffsetsAndHolesElsewhere() throws IOException {
    long size = 64L * MIB + 5;
    Path p = Disks.sparse(dir.resolve("s"), size, 3, 0, 10L * MIB + 1, size - 100);
    assertEquals(size, Files.size(p));
    assertFalse(isZero(read(p, 0, 64 * 1024)));
    assertFalse(isZero(read(p, 10L * MIB + 1, 64 * 1024)));
    assertFalse(isZero(read(p, size - 100, 100)));
    assertTrue(isZero(read(p, 10L * MIB + 1 + 64 * 1024, 1 << 20)));
    assertTrue(isZero(read(p, 64 * 1024, 64 * 1024)));
    long allocated = allocatedBytes(p);
    assertTrue(allocated < 4L * MIB, "should be sparse, but " + allocated + " bytes allocated");
    assertThrows(IllegalArgumentException.class, () -> Disks.sparse(dir.resolve("t"), 10, 1, 10));
  }

  @Test
  void mixedIsDeterministicAndHasEveryKindOfRegion() throws IOException {
    long size = 40L * MIB + 321;
    Path p = Disks.mixed(dir.resolve("m1"), size, 11);
    assertEquals(size, Files.size(p));
    assertEquals(-1, Files.mismatch(p, Disks.mixed(dir.resolve("m2"), size, 11)));
    assertTrue(Files.mismatch(p, Disks.mixed(dir.resolve("m3"), size, 12)) >= 0);
    int zero = 0;
    int compressible = 0;
    int random = 0;
    for (long off = 0; off + 65536 <= size; off += 65536) {
      byte[] c = read(p, off, 65536);
      if (isZero(c)) {
        zero++;
      } else if (deflatedRatio(c) < 0.5) {
        compressible++;
      } else if (deflatedRatio(c) > 0.99) {
        random++;
      }
    }
    assertTrue(zero > 0 && compressible > 0 && random > 0,
        "zero " + zero + ", compressible " + compressible + ", random " + random);
  }

  @Test
  void ext4IsARealFileSystemWithCompressibleContent() throws IOException {
    long size = 64L * MIB + 1000;
    Path p = Disks.ext4(dir.resolve("fs.img"), size);
    assertEquals(size, Files.size(p));
    ByteBuffer sb = ByteBuffer.wrap(read(p, 1024, 1024)).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(0xEF53, sb.getShort(56) & 0xFFFF, "ext4 superblock magic");
    int nonZero = 0;
    long rawBytes = 0;
    long deflated = 0;
    for (long off = 0; off + 65536 <= size; off += 65536) {
      byte[] c = read(p, off, 65536);
      if (!isZero(c)) {
        nonZero++;
        rawBytes += c.length;
        deflated += Math.round(deflatedRatio(c) * c.length);
      }
    }
    assertTrue(nonZero * 65536L > size / 3, "too little content: " + nonZero + " non-zero clusters");
    assertTrue(deflated < rawBytes * 0.8, "content should compress: " + deflated + "/" + rawBytes);
    assertEquals(List.of(), leftovers(), "staging directory must be removed");
  }

  @Test
  void ext4CanHoldAFewHundredMegabytes() throws IOException {
    long size = 512L * MIB;
    Path p = Disks.ext4(dir.resolve("big.img"), size);
    assertEquals(size, Files.size(p));
    assertTrue(allocatedBytes(p) > size / 3, "allocated " + allocatedBytes(p));
  }

  private List<Path> leftovers() throws IOException {
    try (var s = Files.list(dir)) {
      return s.filter(x -> x.getFileName().toString().startsWith(".ext4-content")).toList();
    }
  }

  static byte[] read(Path p, long offset, int len) throws IOException {
    try (FileChannel ch = FileChannel.open(p)) {
      ByteBuffer b = ByteBuffer.allocate(len);
      while (b.hasRemaining() && ch.read(b, offset + b.position()) >= 0) {
        // keep reading
      }
      return Arrays.copyOf(b.array(), b.position());
    }
  }

  static boolean isZero(byte[] b) {
    for (byte v : b) {
      if (v != 0) {
        return false;
      }
    }
    return true;
  }

  static double deflatedRatio(byte[] data) {
    Deflater d = new Deflater(6, true);
    d.setInput(data);
    d.finish();
    byte[] out = new byte[data.length + 1024];
    int n = 0;
    while (!d.finished()) {
      n += d.deflate(out, n, out.length - n);
    }
    d.end();
    return (double) n / data.length;
  }

  /** Blocks the file system allocated for the file, via stat(1) (JDK has no such attribute). */
  static long allocatedBytes(Path p) {
    Tools.Result r = Tools.run(List.of("stat", "-c", "%b %B", p.toString()), Tools.DEFAULT_TIMEOUT);
    String[] f = r.stdout().trim().split(" ");
    return Long.parseLong(f[0]) * Long.parseLong(f[1]);
  }

  @Test
  void contentAtAPositionDoesNotDependOnTheFileSize() throws IOException {
    Path big = Disks.random(dir.resolve("big"), 9L * MIB + 1, 5);
    Path small = Disks.random(dir.resolve("small"), 4097, 5);
    assertArrayEquals(read(small, 0, 4097), read(big, 0, 4097));
    int cluster = 4096;
    Path altBig = Disks.alternating(dir.resolve("ab"), 5L * MIB, cluster, 5);
    Path altSmall = Disks.alternating(dir.resolve("as"), 3 * cluster + 1, cluster, 5);
    assertArrayEquals(read(altSmall, 0, 3 * cluster + 1), read(altBig, 0, 3 * cluster + 1));
  }
}
