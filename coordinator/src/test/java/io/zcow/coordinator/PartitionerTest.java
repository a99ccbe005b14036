package io.zcow.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.zcow.BadInputException;
import io.zcow.proto.RangeRun;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PartitionerTest {
  private static final long MIB = 1L << 20;
  private static final long TIB = 1L << 40;
  private static final long RANGE = 512 * MIB;

  @Test
  void sparseFileYieldsOnlyTheRangesWithData(@TempDir Path dir) throws IOException {
    Path file = dir.resolve("sparse.raw");
    long size = TIB + 1000; // the last range is 1000 bytes
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.setLength(size);
      f.seek(0);
      f.write(new byte[] {1});
      f.seek(3 * RANGE - 4096); // straddles ranges 2 and 3
      f.write(new byte[8192]);
      f.seek(size - 1);
      f.write(new byte[] {1});
    }
    try (Source src = Source.open(file, SourceCache.WRITEBACK)) {
      assumeTrue(src.nextData(4096 * 16) > 4096 * 16, "this file system reports no holes");
      Partitioner p = new Partitioner(src, ImageGeometry.forSource(size, 64 << 10), RANGE);
      assertEquals(2049, p.rangeCount());
      BitSet data = p.dataRanges();
      assertEquals(bits(0, 2, 3, 2048), data);
      assertEquals(2048 * RANGE, p.layout().offset(2048));
      assertEquals(1000, p.layout().length(2048));
      assertEquals(RANGE, p.layout().length(3));
    }
  }

  @Test
  void sixteenTebibytesWithTwoExtentsCostsAFewSeeksNotOnePerRange() {
    long size = 16 * TIB;
    ExtentSource src = new ExtentSource(size, new long[][] {{5 * RANGE + 7, 5 * RANGE + 9}, {10 * TIB, 10 * TIB + 2 * RANGE + 1}});
    Partitioner p = new Partitioner(src, ImageGeometry.forSource(size, 64 << 10), RANGE);
    assertEquals(32768, p.rangeCount());
    int firstOfSecond = (int) (10 * TIB / RANGE);
    assertEquals(bits(5, firstOfSecond, firstOfSecond + 1, firstOfSecond + 2), p.dataRanges());
    assertTrue(src.seeks <= 8, "seeks: " + src.seeks);
  }

  @Test
  void sourceWithoutHoleSupportIsAllData() {
    ExtentSource src = new ExtentSource(3 * RANGE, null);
    Partitioner p = new Partitioner(src, ImageGeometry.forSource(3 * RANGE, 64 << 10), RANGE);
    assertEquals(bits(0, 1, 2), p.dataRanges());
  }

  @Test
  void rangeSizeMustBeAMultipleOfTheClusterSize() {
    ExtentSource src = new ExtentSource(RANGE, null);
    ImageGeometry g = ImageGeometry.forSource(RANGE, 64 << 10);
    assertThrows(BadInputException.class, () -> new Partitioner(src, g, 1000));
    assertThrows(BadInputException.class, () -> new Partitioner(src, g, 0));
  }

  @Test
  void holesBecomeRunsOfRangesAndOnlyTheLongestAreKeptWhenThereAreTooMany() {
    BitSet data = bits(0, 2, 3, 7, 9);
    assertEquals(List.of(run(1, 1), run(4, 3), run(8, 1), run(10, 2)), ZeroRuns.of(data, 12, 100));
    assertEquals(List.of(run(4, 3), run(10, 2)), ZeroRuns.of(data, 12, 2));
    assertEquals(List.of(), ZeroRuns.of(bits(0, 1, 2), 3, 10));
    BitSet none = new BitSet();
    assertEquals(List.of(run(0, 5)), ZeroRuns.of(none, 5, 10));
  }

  private static RangeRun run(long first, long count) {
    return RangeRun.newBuilder().setFirst(first).setCount(count).build();
  }


  private static BitSet bits(int... set) {
    BitSet b = new BitSet();
    for (int i : set) {
      b.set(i);
    }
    return b;
  }

  /** A source made of data extents [start, end); null extents: cannot tell holes. */
  private static final class ExtentSource implements Source {
    final long size;
    final long[][] extents;
    int seeks;

    ExtentSource(long size, long[][] extents) {
      this.size = size;
      this.extents = extents;
    }

    @Override
    public long size() {
      return size;
    }

    @Override
    public String describe() {
      return "extents";
    }

    @Override
    public int read(ByteBuffer dst, long offset) {
      throw new UnsupportedOperationException("the partitioner must not read");
    }

    @Override
    public long nextData(long offset) {
      seeks++;
      if (extents == null) {
        return offset;
      }
      for (long[] e : extents) {
        if (offset < e[1]) {
          return Math.max(offset, e[0]);
        }
      }
      return size;
    }

    @Override
    public long nextHole(long offset) {
      seeks++;
      if (extents == null) {
        return size;
      }
      for (long[] e : extents) {
        if (offset >= e[0] && offset < e[1]) {
          return e[1];
        }
      }
      return offset;
    }

    @Override
    public void close() {}
  }
}
