package io.zcow.worker;

import io.zcow.source.SourceCache;

import io.zcow.source.Source;

import io.zcow.testkit.TestData;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.qcow2.ImageGeometry;
import io.zcow.testkit.Disks;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whole disks from the shared generators, compressed range by range on several threads that share
 * one source (as a worker does), each range checked against the file.
 */
class RangeCompressorOnGeneratedDisksTest {
  private static final int CLUSTER = 65536;
  private static final long RANGE_CLUSTERS = 64; // 4 MiB ranges: many of them, boundaries everywhere

  @TempDir Path dir;

  @Test
  void mixedDiskWithOddBoundariesRoundTrips() throws Exception {
    Path disk = Disks.mixed(dir.resolve("mixed.img"), (40L << 20) + 333, 11);
    roundTripInRanges(disk);
  }

  @Test
  void ext4DiskRoundTrips() throws Exception {
    Path disk = Disks.ext4(dir.resolve("ext4.img"), 64L << 20);
    List<RangeStats> stats = roundTripInRanges(disk);
    long compressed = stats.stream().mapToLong(RangeStats::compressedClusters).sum();
    long zero = stats.stream().mapToLong(RangeStats::zeroClusters).sum();
    assertTrue(compressed > 0 && zero > 0, "a real file system has both: " + stats);
  }

  private List<RangeStats> roundTripInRanges(Path disk) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(3);
    try (Source source = Source.open(disk, SourceCache.AUTO)) {
      ImageGeometry g = ImageGeometry.forSource(source.size(), CLUSTER);
      ThreadLocal<RangeCompressor> compressors = ThreadLocal.withInitial(() -> new RangeCompressor(source, g, 3));
      java.util.Set<RangeCompressor> all = java.util.concurrent.ConcurrentHashMap.newKeySet();
      List<Future<RangeStats>> futures = new ArrayList<>();
      for (long first = 0; first < g.guestClusters(); first += RANGE_CLUSTERS) {
        long f = first;
        long n = Math.min(RANGE_CLUSTERS, g.guestClusters() - first);
        futures.add(pool.submit(() -> {
          RangeCompressor rc = compressors.get();
          all.add(rc);
          RecordingSink sink = new RecordingSink();
          RangeStats stats = rc.compress(f, n, sink);
          byte[] expected = TestData.read(disk, f * CLUSTER, (int) (n * CLUSTER));
          assertEquals(n, sink.clustersCovered(), "range at cluster " + f);
          assertArrayEquals(expected, sink.decode(CLUSTER, f, n), "range at cluster " + f);
          return stats;
        }));
      }
      List<RangeStats> stats = new ArrayList<>();
      for (Future<RangeStats> fu : futures) {
        stats.add(fu.get());
      }
      assertEquals(g.guestClusters(), stats.stream().mapToLong(RangeStats::clusters).sum());
      all.forEach(RangeCompressor::close);
      return stats;
    } finally {
      pool.shutdownNow();
    }
  }
}
