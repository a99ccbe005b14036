package io.zcow.source;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.zcow.BadInputException;
import io.zcow.io.Aligned;
import io.zcow.testkit.TestData;
import io.zcow.testkit.Unprivileged;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileSourceTest {
  private static final int BLOCK = 4096;

  @TempDir Path dir;

  private Path fileOf(byte[] content) {
    Path f = TestData.sparse(dir.resolve("f" + content.length), 0);
    TestData.write(f, 0, content);
    return f;
  }

  @Test
  void readsAFileWhoseSizeIsNoMultipleOfTheBlock() {
    byte[] content = TestData.random(1, 3 * BLOCK + 100);
    try (FileSource s = FileSource.open(fileOf(content), SourceCache.AUTO)) {
      assertEquals(content.length, s.size());
      assertTrue(s.describe().startsWith("file "), s.describe());
      ByteBuffer b = Aligned.allocate(8 * BLOCK, BLOCK);
      assertEquals(content.length, s.read(b, 0), "a request past the end stops at the end");
      assertEquals(0, b.position(), "the caller's position is not moved");
      byte[] got = new byte[content.length];
      b.get(got);
      assertArrayEquals(content, got);
    }
  }

  @Test
  void directReadsServeTheUnalignedTail() {
    byte[] content = TestData.random(2, 3 * BLOCK + 100);
    try (FileSource s = FileSource.open(fileOf(content), SourceCache.DIRECT)) {
      assertTrue(s.isDirect());
      assertTrue(s.describe().endsWith("(O_DIRECT)"), s.describe());
      ByteBuffer b = Aligned.allocate(2 * BLOCK, BLOCK);
      assertEquals(BLOCK + 100, s.read(b, 2 * BLOCK));
      byte[] got = new byte[BLOCK + 100];
      b.get(got);
      assertArrayEquals(java.util.Arrays.copyOfRange(content, 2 * BLOCK, content.length), got);
      assertEquals(0, s.read(b, content.length), "at the end");
      assertEquals(0, s.read(b, 16 * BLOCK), "past the end");
    }
  }

  @Test
  void unalignedRequestsOfADirectSourceStillGetTheirBytes() {
    byte[] content = TestData.random(3, 5 * BLOCK);
    try (FileSource s = FileSource.open(fileOf(content), SourceCache.AUTO)) {
      ByteBuffer heap = ByteBuffer.allocate(1000);
      assertEquals(1000, s.read(heap, 3));
      assertArrayEquals(java.util.Arrays.copyOfRange(content, 3, 1003), heap.array());
      ByteBuffer odd = Aligned.allocate(2 * BLOCK, BLOCK).position(1).slice();
      assertEquals(odd.remaining(), s.read(odd, BLOCK));
      assertEquals(content[BLOCK + 5], odd.get(5));
    }
  }

  /** ext4 refuses (EINVAL) a direct read that crosses its largest file size; the last block is read exactly. */
  @Test
  void theLastBlocksOfTheLargestFileAreReadDirectly() {
    long size = (16L << 40) - BLOCK;
    Path f = dir.resolve("largest");
    try {
      TestData.sparse(f, size);
    } catch (RuntimeException e) {
      assumeTrue(false, "this file system takes no file of 16 TiB - 4 KiB: " + e);
    }
    byte[] tail = TestData.random(6, 31 * BLOCK);
    TestData.write(f, size - tail.length, tail);
    try (FileSource s = FileSource.open(f, SourceCache.AUTO)) {
      ByteBuffer b = Aligned.allocate(32 * BLOCK, BLOCK);
      assertEquals(tail.length, s.read(b, size - 32 * BLOCK + BLOCK));
      byte[] got = new byte[tail.length];
      b.get(got);
      assertArrayEquals(tail, got);
    }
  }

  @Test
  void findsDataAndHolesOfASparseFile() {
    long mib = 1 << 20;
    Path f = TestData.sparse(dir.resolve("sparse"), 16 * mib);
    TestData.write(f, 4 * mib, TestData.random(4, (int) mib));
    try (FileSource s = FileSource.open(f, SourceCache.AUTO)) {
      assumeTrue(s.nextData(0) != 0, "this file system reports no holes");
      assertEquals(4 * mib, s.nextData(0));
      assertEquals(4 * mib + 5, s.nextData(4 * mib + 5), "inside data");
      assertEquals(5 * mib, s.nextHole(4 * mib));
      assertEquals(0, s.nextHole(0), "inside a hole");
      assertEquals(16 * mib, s.nextData(5 * mib), "no data after the last extent");
      assertEquals(16 * mib, s.nextData(16 * mib), "at the end");
      assertEquals(16 * mib, s.nextHole(16 * mib + 1), "past the end");
    }
  }

  @Test
  void aFileWithoutHolesIsAllData() {
    try (FileSource s = FileSource.open(fileOf(TestData.random(5, 3 * BLOCK + 1)), SourceCache.AUTO)) {
      assertEquals(0, s.nextData(0));
      assertEquals(s.size(), s.nextHole(0));
      assertEquals(s.size(), s.nextHole(s.size() - 1));
    }
  }

  @Test
  void anEmptyFileIsASourceOfNoBytes() {
    try (FileSource s = FileSource.open(fileOf(new byte[0]), SourceCache.DIRECT)) {
      assertEquals(0, s.size());
      assertEquals(0, s.read(Aligned.allocate(BLOCK, BLOCK), 0));
      assertEquals(0, s.nextData(0));
    }
  }

  @Test
  void refusesAMissingFile() {
    Path missing = dir.resolve("nope.img");
    assertBadInput("source " + missing + " does not exist", missing, SourceCache.AUTO);
  }

  @Test
  void refusesADirectory() {
    assertBadInput("source " + dir + " is a directory", dir, SourceCache.AUTO);
  }

  @Test
  void refusesACharacterDevice() {
    Path devNull = Path.of("/dev/null");
    assumeTrue(Files.exists(devNull), "no /dev/null here");
    assertBadInput("source /dev/null is not a regular file or block device", devNull, SourceCache.AUTO);
  }

  /** Root reads every file: as root, the check runs in a child JVM as nobody (setpriv). */
  @Test
  void refusesAnUnreadableFile() throws IOException {
    Path f = fileOf(new byte[10]);
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("-w-------"));
    String expected = "source " + f + " is not readable";
    if (!Unprivileged.isRoot()) {
      assertBadInput(expected, f, SourceCache.AUTO);
      return;
    }
    Unprivileged.openToOthers(dir);
    Unprivileged.Result r = Unprivileged.run(OpenSource.class, f.toString());
    assertEquals(2, r.exitCode(), r.stdout() + r.stderr());
    assertEquals(expected, r.stdout().strip());
    // The same file, readable to others: the child opens it, so the refusal above was the permission's.
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
    Unprivileged.Result readable = Unprivileged.run(OpenSource.class, f.toString());
    assertEquals(0, readable.exitCode(), readable.stdout() + readable.stderr());
    assertEquals("opened: 10 bytes", readable.stdout().strip());
  }

  /** The child of {@link #refusesAnUnreadableFile}: opens a source and says what happened. */
  static final class OpenSource {
    public static void main(String[] args) {
      try (Source s = Source.open(Path.of(args[0]), SourceCache.AUTO)) {
        System.out.println("opened: " + s.size() + " bytes");
      } catch (BadInputException e) {
        System.out.println(e.getMessage());
        System.exit(2);
      }
    }
  }

  /** /proc files are regular files that refuse O_DIRECT (EINVAL at open). */
  @Test
  void directModeRefusesAFileSystemWithoutODirectWhereAutoFallsBack() {
    Path proc = Path.of("/proc/version");
    assumeTrue(Files.isRegularFile(proc) && Files.isReadable(proc), "no /proc/version here");
    BadInputException e = assertThrows(BadInputException.class, () -> FileSource.open(proc, SourceCache.DIRECT));
    assertTrue(e.getMessage().startsWith("source /proc/version cannot be read with O_DIRECT"), e.getMessage());
    assertFalse(e.getMessage().contains("\n"), "one line");
    try (FileSource s = FileSource.open(proc, SourceCache.AUTO)) {
      assertFalse(s.isDirect());
    }
  }

  @Test
  void writebackModeNeverUsesODirect() {
    try (FileSource s = FileSource.open(fileOf(new byte[BLOCK]), SourceCache.WRITEBACK)) {
      assertFalse(s.isDirect());
    }
  }

  private static void assertBadInput(String message, Path path, SourceCache mode) {
    BadInputException e = assertThrows(BadInputException.class, () -> Source.open(path, mode));
    assertEquals(message, e.getMessage());
  }
}
