package io.zcow.bench;

import io.zcow.qcow2.ClusterKind;
import io.zcow.qcow2.DirectFile;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.qcow2.Manifest;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import io.zcow.worker.ClusterSink;
import io.zcow.worker.RangeCompressor;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;

/**
 * The digest path's cost on one core: SHA-256 (JDK) of 64 KiB clusters in a direct buffer, as a
 * worker digests them; and, with a FILE, a digest incremental's pass over it with nothing
 * changed ({@link RangeCompressor} reading, detecting zeros and digesting every cluster, through
 * the page cache: the compressor's figure, not the disk's).
 *
 * <p>Usage: {@code DigestRate [FILE] [CLUSTER_SIZE] [ROUNDS]}; prints MB/s (10^6 bytes per second).
 */
public final class DigestRate {
  public static void main(String[] args) throws Exception {
    int clusterSize = args.length > 1 ? Integer.parseInt(args[1]) : 65536;
    int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 3;
    ByteBuffer cluster = DirectFile.allocateAligned(clusterSize, 4096);
    byte[] random = new byte[clusterSize];
    new Random(1).nextBytes(random);
    cluster.put(random).flip();
    MessageDigest sha = Manifest.sha256();
    double[] rates = new double[rounds];
    long n = (1L << 30) / clusterSize; // 1 GiB a round
    for (int r = -1; r < rounds; r++) { // round -1 warms up the JIT
      long t0 = System.nanoTime();
      for (long i = 0; i < n; i++) {
        Manifest.digest(sha, cluster);
      }
      if (r >= 0) {
        rates[r] = n * clusterSize / ((System.nanoTime() - t0) / 1e9) / 1e6;
      }
    }
    Arrays.sort(rates);
    System.out.printf(Locale.ROOT, "sha256-mbps %.1f%n", rates[rounds / 2]);
    if (args.length == 0) {
      return;
    }
    try (Source source = Source.open(Path.of(args[0]), SourceCache.WRITEBACK);
        RangeCompressor rc = new RangeCompressor(source, ImageGeometry.forSource(source.size(), clusterSize), 3)
            .withDigests()) {
      long clusters = ImageGeometry.forSource(source.size(), clusterSize).guestClusters();
      ClusterSink sink = new ClusterSink() {
        @Override
        public void cluster(long guestCluster, ClusterKind kind, ByteBuffer payload) {}

        @Override
        public void zeros(long firstGuestCluster, long count) {}

        @Override
        public void unchanged(long firstGuestCluster, long count) {}
      };
      for (int r = -1; r < rounds; r++) {
        long t0 = System.nanoTime();
        rc.compress(0, clusters, sink, (g, d) -> false); // nothing changed: read, zero check, digest
        if (r >= 0) {
          rates[r] = source.size() / ((System.nanoTime() - t0) / 1e9) / 1e6;
        }
      }
      Arrays.sort(rates);
      System.out.printf(Locale.ROOT, "unchanged-pass-mbps %.1f%n", rates[rounds / 2]);
    }
  }
}
