package io.zcow.bench;

import io.zcow.qcow2.ClusterKind;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.worker.ClusterSink;
import io.zcow.worker.RangeCompressor;
import io.zcow.worker.RangeStats;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/**
 * Worker compression throughput of one thread: {@link RangeCompressor} over a whole file (read
 * through the page cache, so the figure is the compressor's, as {@code zstd -b} measures its own),
 * zero detection and zstd included, payloads handed to a sink that only counts them.
 *
 * <p>Usage: {@code CompressThroughput FILE [LEVEL] [CLUSTER_SIZE] [ROUNDS]}; prints one line per
 * round and the median in MB/s (10^6 bytes of source per second).
 */
public final class CompressThroughput {
  public static void main(String[] args) throws Exception {
    Path file = Path.of(args[0]);
    int level = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    int clusterSize = args.length > 2 ? Integer.parseInt(args[2]) : 65536;
    int rounds = args.length > 3 ? Integer.parseInt(args[3]) : 3;
    try (Source source = Source.open(file, SourceCache.WRITEBACK);
        RangeCompressor rc = new RangeCompressor(source, ImageGeometry.forSource(source.size(), clusterSize), level)) {
      long clusters = ImageGeometry.forSource(source.size(), clusterSize).guestClusters();
      long[] out = new long[1];
      ClusterSink sink = new ClusterSink() {
        @Override
        public void cluster(long guestCluster, ClusterKind kind, ByteBuffer payload) {
          out[0] += payload.remaining();
        }

        @Override
        public void zeros(long firstGuestCluster, long count) {}
      };
      rc.compress(0, clusters, sink); // warm-up: JIT, page cache
      double[] rates = new double[rounds];
      for (int r = 0; r < rounds; r++) {
        out[0] = 0;
        long t0 = System.nanoTime();
        RangeStats stats = rc.compress(0, clusters, sink);
        double secs = (System.nanoTime() - t0) / 1e9;
        rates[r] = source.size() / secs / 1e6;
        System.out.printf(Locale.ROOT, "round %d: %d -> %d bytes (x%.3f), %.1f MB/s (zero %d, compressed %d, raw %d)%n",
            r + 1, source.size(), out[0], (double) source.size() / Math.max(1, out[0]), rates[r],
            stats.zeroClusters(), stats.compressedClusters(), stats.rawClusters());
      }
      Arrays.sort(rates);
      System.out.printf(Locale.ROOT, "median: %.1f MB/s%n", rates[rounds / 2]);
    }
  }
}
