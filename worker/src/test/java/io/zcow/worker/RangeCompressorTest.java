package io.zcow.worker;


import io.zcow.source.SourceCache;

import io.zcow.source.Source;

import io.zcow.testkit.TestData;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.zcow.RetriableException;
import io.zcow.qcow2.ClusterKind;
import io.zcow.qcow2.ImageGeometry;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RangeCompressorTest {
  private static final int LEVEL = 3;

  @TempDir Path dir;

  /**
   * A file of every kind of content, its size a multiple of neither the cluster size nor 512:
   * compressible text, random bytes, written zeros, a hole, a single stray byte.
   */
  private Path mixedFile(int clusterSize) {
    Path f = TestData.sparse(dir.resolve("mixed"), 12L * clusterSize + 1234 + 7);
    TestData.write(f, 0, TestData.compressible(1, 3 * clusterSize + 100));
    TestData.write(f, 4L * clusterSize, TestData.random(2, 2 * clusterSize));
    TestData.write(f, 6L * clusterSize, new byte[clusterSize]); // written zeros: data that reads as zero
    // clusters 7 and 8 stay a hole
    TestData.write(f, 9L * clusterSize + clusterSize - 1, new byte[] {1}); // one byte at a cluster's end
    TestData.write(f, 10L * clusterSize, TestData.compressible(3, 2 * clusterSize + 1241));
    return f;
  }

  @ParameterizedTest(name = "cluster {0}, block {1}")
  @CsvSource({"4096, 8192", "4096, 4194304", "65536, 131072", "65536, 4194304", "2097152, 4194304"})
  void roundTripsEveryKindOfContentWithPartialLastCluster(int clusterSize, int blockSize) {
    Path f = mixedFile(clusterSize);
    try (Source source = Source.open(f, SourceCache.AUTO)) {
      ImageGeometry g = ImageGeometry.forSource(source.size(), clusterSize);
      RecordingSink sink = new RecordingSink();
      RangeStats stats;
      try (RangeCompressor rc = new RangeCompressor(source, g, LEVEL, blockSize)) {
        stats = rc.compress(0, g.guestClusters(), sink);
      }
      assertEquals(13, g.guestClusters());
      assertEquals(g.guestClusters(), sink.clustersCovered());
      byte[] expected = TestData.read(f, 0, 13 * clusterSize); // zeros past the end: the padding
      assertArrayEquals(expected, sink.decode(clusterSize, 0, 13));
      assertEquals(g.guestClusters(), stats.clusters());
      assertEquals(sink.count(ClusterKind.RAW), stats.rawClusters());
      assertEquals(sink.count(ClusterKind.COMPRESSED), stats.compressedClusters());
      assertTrue(stats.bytesRead() <= source.size(), "read " + stats.bytesRead() + " of " + source.size());
      if (clusterSize < 1 << 21) { // at 2 MiB, clusters mix kinds; at smaller sizes each is one kind
        assertEquals(2, stats.rawClusters(), "the random clusters");
        assertTrue(sink.events.contains(new RecordingSink.Zeros(6, 3)), "written zeros + hole as one run: " + sink.events);
      }
    }
  }

  @Test
  void rangesCompressedApartAddUpToTheWhole() {
    int cs = 4096;
    Path f = mixedFile(cs);
    try (Source source = Source.open(f, SourceCache.AUTO);
        RangeCompressor rc = new RangeCompressor(source, ImageGeometry.forSource(source.size(), cs), LEVEL, 2 * cs)) {
      long[][] ranges = {{0, 5}, {5, 3}, {8, 4}, {12, 1}};
      for (long[] r : ranges) {
        RecordingSink sink = new RecordingSink();
        RangeStats stats = rc.compress(r[0], r[1], sink);
        byte[] expected = TestData.read(f, r[0] * cs, (int) r[1] * cs);
        assertEquals(r[0], sink.events.get(0).first(), "a range starts at its first cluster");
        assertEquals(r[1], sink.clustersCovered());
        assertArrayEquals(expected, sink.decode(cs, r[0], r[1]), "range " + r[0]);
      }
    }
  }

  @Test
  void writtenZerosBecomeOneZeroRunWithoutPayload() {
    int cs = 65536;
    Path f = TestData.sparse(dir.resolve("zeros"), 0);
    TestData.write(f, 0, new byte[10 * cs + 512]);
    try (Source source = Source.open(f, SourceCache.AUTO);
        RangeCompressor rc = new RangeCompressor(source, ImageGeometry.forSource(source.size(), cs), LEVEL)) {
      RecordingSink sink = new RecordingSink();
      RangeStats stats = rc.compress(0, 11, sink);
      assertEquals(List.of(new RecordingSink.Zeros(0, 11)), sink.events);
      assertEquals(new RangeStats(11, 0, 0, 10 * cs + 512, 0), stats);
    }
  }

  @Test
  void aSingleNonZeroByteAnywhereMakesAClusterData() {
    int cs = 4096;
    for (int at : new int[] {0, 1, 7, 8, 63, 64, 2047, cs - 8, cs - 1}) {
      Path f = TestData.sparse(dir.resolve("byte" + at), 0);
      byte[] content = new byte[3 * cs];
      content[cs + at] = (byte) 0x80;
      TestData.write(f, 0, content);
      try (Source source = Source.open(f, SourceCache.WRITEBACK);
          RangeCompressor rc = new RangeCompressor(source, ImageGeometry.forSource(source.size(), cs), LEVEL)) {
        RecordingSink sink = new RecordingSink();
        rc.compress(0, 3, sink);
        assertEquals(3, sink.events.size(), "byte at " + at + ": " + sink.events);
        assertEquals(new RecordingSink.Zeros(0, 1), sink.events.get(0));
        assertEquals(new RecordingSink.Zeros(2, 1), sink.events.get(2));
        assertArrayEquals(content, sink.decode(cs, 0, 3));
      }
    }
  }

  @Test
  void randomDataIsStoredRaw() {
    int cs = 65536;
    Path f = TestData.sparse(dir.resolve("random"), 0);
    byte[] content = TestData.random(7, 8 * cs);
    TestData.write(f, 0, content);
    try (Source source = Source.open(f, SourceCache.AUTO);
        RangeCompressor rc = new RangeCompressor(source, ImageGeometry.forSource(source.size(), cs), LEVEL)) {
      RecordingSink sink = new RecordingSink();
      RangeStats stats = rc.compress(0, 8, sink);
      assertEquals(8, sink.count(ClusterKind.RAW));
      assertEquals(8, stats.rawClusters());
      assertEquals(8L * cs, stats.payloadBytes());
      assertArrayEquals(content, sink.decode(cs, 0, 8));
    }
  }

  @Test
  void compressibleDataShrinks() {
    int cs = 65536;
    Path f = TestData.sparse(dir.resolve("text"), 0);
    TestData.write(f, 0, TestData.compressible(9, 16 * cs));
    try (Source source = Source.open(f, SourceCache.AUTO);
        RangeCompressor rc = new RangeCompressor(source, ImageGeometry.forSource(source.size(), cs), LEVEL)) {
      RangeStats stats = rc.compress(0, 16, new RecordingSink());
      assertEquals(16, stats.compressedClusters());
      assertTrue(stats.payloadBytes() < 16L * cs / 2, "payload " + stats.payloadBytes());
    }
  }

  /** 64 GiB with 5 MiB of data: only the data is read, the holes cost a few seeks. */
  @Test
  void sparseFileReadsOnlyItsData() {
    int cs = 65536;
    long size = 64L << 30;
    Path f = TestData.sparse(dir.resolve("sparse"), size);
    long[] at = {0, 10L << 30, (10L << 30) + (3 << 20) + 4096, size - (1 << 20)};
    int[] len = {100_000, 3 << 20, 5000, 1 << 20};
    for (int i = 0; i < at.length; i++) {
      TestData.write(f, at[i], TestData.compressible(i, len[i]));
    }
    try (CountingSource source = new CountingSource(Source.open(f, SourceCache.AUTO), true)) {
      assumeTrue(source.nextData(0) == 0 && source.nextHole(0) < size, "this file system reports no holes");
      ImageGeometry g = ImageGeometry.forSource(size, cs);
      RecordingSink sink = new RecordingSink();
      RangeStats stats;
      try (RangeCompressor rc = new RangeCompressor(source, g, LEVEL)) {
        stats = rc.compress(0, g.guestClusters(), sink);
      }
      // Data extents are whole file-system blocks; reads are whole clusters around them.
      long dataClusters = 2 + 49 + 16;
      assertEquals(dataClusters * cs, stats.bytesRead());
      assertEquals(stats.bytesRead(), source.bytesRead.get());
      assertTrue(source.seeks.get() <= 2 * 4 + 2, "seeks: " + source.seeks.get());
      assertEquals(g.guestClusters(), sink.clustersCovered());
      assertEquals(g.guestClusters() - dataClusters, stats.zeroClusters());
      // The 4 KiB hole between the 3 MiB and the 5000 bytes lies inside one cluster: two gaps, two runs.
      assertEquals(2, sink.events.stream().filter(e -> e instanceof RecordingSink.Zeros).count(), "one run per gap");
      for (RecordingSink.Event e : sink.events) {
        if (e instanceof RecordingSink.Cluster c) {
          RecordingSink one = new RecordingSink();
          one.events.add(c);
          assertArrayEquals(TestData.read(f, c.first() * cs, cs), one.decode(cs, c.first(), 1), "cluster " + c.first());
        }
      }
    }
  }

  @Test
  void aSourceBlindToHolesGivesTheSameClusters() {
    int cs = 4096;
    Path f = mixedFile(cs);
    try (Source inner = Source.open(f, SourceCache.AUTO)) {
      RecordingSink seeing = new RecordingSink();
      RecordingSink blind = new RecordingSink();
      ImageGeometry g = ImageGeometry.forSource(inner.size(), cs);
      RangeStats a;
      RangeStats b;
      try (RangeCompressor rc = new RangeCompressor(new CountingSource(inner, true), g, LEVEL, 4 * cs)) {
        a = rc.compress(0, 13, seeing);
      }
      try (RangeCompressor rc = new RangeCompressor(new CountingSource(inner, false), g, LEVEL, 4 * cs)) {
        b = rc.compress(0, 13, blind);
      }
      assertEquals(seeing.events, blind.events);
      assertTrue(a.bytesRead() < b.bytesRead(), "the hole is not read: " + a.bytesRead() + " vs " + b.bytesRead());
    }
  }

  @Test
  void aSourceThatEndsEarlyFailsRetriably() {
    int cs = 4096;
    Source shortReads = new Source() {
      @Override
      public long size() {
        return 4L * cs;
      }

      @Override
      public String describe() {
        return "short";
      }

      @Override
      public int read(ByteBuffer dst, long offset) {
        return Math.min(dst.remaining(), 100);
      }

      @Override
      public long nextData(long offset) {
        return offset;
      }

      @Override
      public long nextHole(long offset) {
        return size();
      }

      @Override
      public void close() {}
    };
    try (RangeCompressor rc = new RangeCompressor(shortReads, ImageGeometry.forSource(4L * cs, cs), LEVEL)) {
      RetriableException e = assertThrows(RetriableException.class, () -> rc.compress(0, 4, new RecordingSink()));
      assertTrue(e.getMessage().contains("short ended early: 100 of 16384 bytes read at 0x0"), e.getMessage());
    }
  }

  /** The block after the one being compressed is read ahead; a range that fails leaves it unread. */
  @Test
  void aRangeThatFailsMidwayLeavesNothingBehindForTheNext() {
    int cs = 4096;
    Path f = mixedFile(cs);
    try (Source source = Source.open(f, SourceCache.AUTO);
        RangeCompressor rc = new RangeCompressor(source, ImageGeometry.forSource(source.size(), cs), LEVEL, cs)) {
      RecordingSink failing = new RecordingSink() {
        @Override
        public void cluster(long guestCluster, ClusterKind kind, ByteBuffer payload) {
          throw new IllegalStateException("sink gave up at " + guestCluster);
        }
      };
      assertThrows(IllegalStateException.class, () -> rc.compress(0, 4, failing));
      RecordingSink sink = new RecordingSink();
      RangeStats stats = rc.compress(4, 3, sink);
      byte[] expected = TestData.read(f, 4L * cs, 3 * cs);
      assertArrayEquals(expected, sink.decode(cs, 4, 3));
      assertEquals(3, stats.clusters());
    }
  }

  @Test
  void aReadAheadThatFailsFailsItsRangeRetriably() {
    int cs = 4096;
    Path f = mixedFile(cs);
    try (Source inner = Source.open(f, SourceCache.AUTO)) {
      Source failsLater = new CountingSource(inner, true) {
        @Override
        public int read(ByteBuffer dst, long offset) {
          if (offset >= 2L * cs) {
            throw new RetriableException("disk gone at 0x" + Long.toHexString(offset), null);
          }
          return super.read(dst, offset);
        }
      };
      try (RangeCompressor rc = new RangeCompressor(failsLater, ImageGeometry.forSource(inner.size(), cs), LEVEL, cs)) {
        RetriableException e = assertThrows(RetriableException.class, () -> rc.compress(0, 4, new RecordingSink()));
        assertEquals("disk gone at 0x2000", e.getMessage());
      }
    }
  }

  @Test
  void rejectsBadArgumentsNamingThem() {
    int cs = 4096;
    Path f = mixedFile(cs);
    try (Source source = Source.open(f, SourceCache.AUTO)) {
      ImageGeometry g = ImageGeometry.forSource(source.size(), cs);
      ImageGeometry wrong = new ImageGeometry(12, g.virtualSize() + 512);
      assertMessage("geometry.virtualSize", () -> new RangeCompressor(source, wrong, LEVEL));
      assertMessage("blockSize", () -> new RangeCompressor(source, g, LEVEL, cs + 512));
      assertMessage("blockSize", () -> new RangeCompressor(source, g, LEVEL, 0));
      assertMessage("level", () -> new RangeCompressor(source, g, 99));
      RangeCompressor rc = new RangeCompressor(source, g, LEVEL);
      assertMessage("firstCluster 12 and clusterCount 2", () -> rc.compress(12, 2, new RecordingSink()));
      assertMessage("firstCluster -1", () -> rc.compress(-1, 2, new RecordingSink()));
      assertMessage("clusterCount -1", () -> rc.compress(0, -1, new RecordingSink()));
      rc.close();
      assertThrows(IllegalStateException.class, () -> rc.compress(0, 1, new RecordingSink()));
    }
  }

  private static void assertMessage(String part, org.junit.jupiter.api.function.Executable call) {
    Exception e = assertThrows(IllegalArgumentException.class, call);
    assertTrue(e.getMessage().contains(part), "message should name " + part + ": " + e.getMessage());
  }
}
