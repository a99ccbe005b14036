package io.zcow.worker;

import io.zcow.source.Source;

import io.zcow.RetriableException;
import io.zcow.qcow2.ClusterKind;
import io.zcow.qcow2.DirectFile;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.qcow2.Manifest;
import io.zcow.qcow2.ZstdClusterCompressor;
import java.io.Closeable;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * Turns a span of guest clusters of a {@link Source} into zero runs and compressed or raw
 * payloads.
 *
 * <p>Reads sequentially in large aligned blocks (O_DIRECT-friendly), asks the source where data
 * and holes lie once per data extent and never reads a hole, recognises all-zero clusters without
 * compressing them, and keeps a cluster raw when zstd cannot shrink it below cluster_size. The
 * last guest cluster, partial in the source, is padded with zeros.
 *
 * <p>While a block is being compressed, the next block of the same data extent is read by a
 * reader thread of this compressor into a second buffer: with O_DIRECT there is no kernel
 * read-ahead, and a thread that reads, then compresses, then reads again left the core idle for
 * every read (on a 2-core host a third compress thread ran a 3 GiB convert faster than two).
 *
 * <p>Not thread safe: one per thread, since it owns a zstd context and its buffers (two blocks of
 * {@code blockSize} bytes and one cluster), reused for every range. Reusable after a failed range.
 */
public final class RangeCompressor implements Closeable {
  /** Large enough that per-read costs vanish, small enough to stay in the last-level cache. */
  public static final int DEFAULT_BLOCK_SIZE = 4 << 20;
  private static final int BUFFER_ALIGNMENT = DirectFile.MIN_ALIGNMENT;

  private final Source source;
  private final int clusterSize;
  private final long guestClusters;
  private final int blockSize;
  private final ZstdClusterCompressor compressor;
  /** The block being processed, and the one the reader fills meanwhile. */
  private ByteBuffer block;
  private ByteBuffer spare;
  private final ByteBuffer payload;
  private final ExecutorService reader;
  /** A read of {@link #spare} in flight: where, how long, and its byte count when done. */
  private Prefetch prefetch;
  private boolean closed;
  /** Null unless {@link #withDigests()}: then every non-zero cluster read is digested. */
  private MessageDigest sha;

  /** With {@link #DEFAULT_BLOCK_SIZE} (or one cluster, if larger) per read. */
  public RangeCompressor(Source source, ImageGeometry geometry, int level) {
    this(source, geometry, level, Math.max(DEFAULT_BLOCK_SIZE, geometry.clusterSize()));
  }

  /**
   * @param geometry its virtual size must be the source size rounded up to 512
   * @param level zstd level ({@link ZstdClusterCompressor#MIN_LEVEL} to {@link
   *     ZstdClusterCompressor#MAX_LEVEL})
   * @param blockSize bytes per read, a positive multiple of the cluster size
   */
  public RangeCompressor(Source source, ImageGeometry geometry, int level, int blockSize) {
    Objects.requireNonNull(source, "source");
    Objects.requireNonNull(geometry, "geometry");
    long expected = (source.size() + 511) & ~511L;
    if (geometry.virtualSize() != expected) {
      throw new IllegalArgumentException("geometry.virtualSize must be the source size rounded up to 512 ("
          + expected + " for " + source.describe() + "): " + geometry.virtualSize());
    }
    this.clusterSize = geometry.clusterSize();
    if (blockSize <= 0 || blockSize % clusterSize != 0) {
      throw new IllegalArgumentException(
          "blockSize must be a positive multiple of the cluster size " + clusterSize + ": " + blockSize);
    }
    this.source = source;
    this.guestClusters = geometry.guestClusters();
    this.blockSize = blockSize;
    this.compressor = new ZstdClusterCompressor(clusterSize, level);
    this.block = DirectFile.allocateAligned(blockSize, BUFFER_ALIGNMENT).order(ByteOrder.nativeOrder());
    this.spare = DirectFile.allocateAligned(blockSize, BUFFER_ALIGNMENT).order(ByteOrder.nativeOrder());
    this.reader = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "zcow-read-ahead");
      t.setDaemon(true);
      return t;
    });
    this.payload = DirectFile.allocateAligned(clusterSize, BUFFER_ALIGNMENT);
  }

  /**
   * Digests every non-zero cluster it reads (SHA-256 of the whole cluster, the last one padded
   * with zeros, {@link Manifest#digest}) and hands the digest to the sink with the payload.
   */
  public RangeCompressor withDigests() {
    this.sha = Manifest.sha256();
    return this;
  }

  /**
   * Compresses guest clusters {@code firstCluster} to {@code firstCluster + clusterCount - 1} into
   * {@code sink}, which sees each of them exactly once, in ascending order (see {@link
   * ClusterSink}).
   *
   * @throws io.zcow.RetriableException when the source fails or ends early
   */
  public RangeStats compress(long firstCluster, long clusterCount, ClusterSink sink) {
    return compress(firstCluster, clusterCount, sink, null);
  }

  /**
   * As {@link #compress(long, long, ClusterSink)}, but only clusters {@code filter} calls changed
   * are compressed and sent; the others go to the sink as unchanged runs ({@link
   * ClusterSink#unchanged}). Every cluster is still read (and digested: the filter needs {@link
   * #withDigests()}).
   */
  public RangeStats compress(long firstCluster, long clusterCount, ClusterSink sink, ChangeFilter filter) {
    if (filter != null && sha == null) {
      throw new IllegalStateException("a change filter needs withDigests()");
    }
    if (closed) {
      throw new IllegalStateException("RangeCompressor is closed");
    }
    Objects.requireNonNull(sink, "sink");
    if (firstCluster < 0 || clusterCount < 0 || firstCluster > guestClusters - clusterCount) {
      throw new IllegalArgumentException("firstCluster " + firstCluster + " and clusterCount " + clusterCount
          + " must lie within the " + guestClusters + " guest clusters");
    }
    discardPrefetch();
    Pass pass = new Pass(sink, filter);
    long size = source.size();
    long pos = firstCluster * clusterSize;
    long end = pos + clusterCount * clusterSize;
    long dataEnd = pos; // [pos, dataEnd) is known to hold data; past it, ask the source
    while (pos < end) {
      if (pos >= dataEnd) {
        long data = pos < size ? source.nextData(pos) : size;
        long zerosEnd = data >= size ? end : Math.min(floorCluster(data), end);
        if (zerosEnd > pos) {
          pass.zeros(pos / clusterSize, (zerosEnd - pos) / clusterSize);
          pos = zerosEnd;
          if (pos >= end) {
            break;
          }
        }
        // A source that breaks its contract must not make us loop forever.
        dataEnd = Math.max(source.nextHole(data), data + 1);
      }
      // A cluster that holds the start of a hole is read whole: the hole reads as zeros.
      long extentEnd = Math.min(ceilCluster(dataEnd), end);
      long readEnd = Math.min(pos + blockSize, extentEnd);
      int n = read(pos, (int) (readEnd - pos));
      if (readEnd < extentEnd) {
        startPrefetch(readEnd, (int) (Math.min(readEnd + blockSize, extentEnd) - readEnd));
      }
      process(pos, (int) (readEnd - pos), n, pass);
      pos = readEnd;
    }
    return pass.finish();
  }

  /** Fills {@link #block} with {@code length} bytes at {@code offset}: the prefetched ones if they are those. */
  private int read(long offset, int length) {
    Prefetch p = prefetch;
    prefetch = null;
    if (p != null) {
      int n = p.await();
      if (p.offset == offset && p.length == length) {
        ByteBuffer filled = spare;
        spare = block;
        block = filled;
        return n;
      }
    }
    block.clear().limit(length);
    return source.read(block, offset);
  }

  /** A read left in flight by a range that failed belongs to no range now. */
  private void discardPrefetch() {
    Prefetch p = prefetch;
    prefetch = null;
    if (p != null) {
      try {
        p.await();
      } catch (RuntimeException ignored) {
        // that range has failed already, with its own error
      }
    }
  }

  private void startPrefetch(long offset, int length) {
    ByteBuffer target = spare;
    target.clear().limit(length);
    prefetch = new Prefetch(offset, length,
        CompletableFuture.supplyAsync(() -> source.read(target, offset), reader));
  }

  private record Prefetch(long offset, int length, CompletableFuture<Integer> bytes) {
    int await() {
      try {
        return bytes.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new RetriableException("interrupted while reading ahead at 0x" + Long.toHexString(offset), e);
      } catch (ExecutionException e) {
        Throwable cause = e.getCause();
        if (cause instanceof RuntimeException r) {
          throw r;
        }
        throw new RetriableException("read-ahead at 0x" + Long.toHexString(offset) + " failed: " + cause, cause);
      }
    }
  }

  private void process(long offset, int length, int n, Pass pass) {
    long expected = Math.min(length, source.size() - offset);
    if (n < expected) {
      throw new RetriableException(String.format(
          "%s ended early: %d of %d bytes read at 0x%x", source.describe(), n, expected, offset), null);
    }
    ZeroCheck.fill(block, n, length); // past the end of the source: the padding of the last cluster
    pass.bytesRead += n;
    long guest = offset / clusterSize;
    for (int off = 0; off < length; off += clusterSize, guest++) {
      if (ZeroCheck.isZero(block, off, clusterSize)) {
        pass.zeros(guest, 1);
      } else {
        pass.data(guest, block.duplicate().position(off).limit(off + clusterSize));
      }
    }
  }

  private long floorCluster(long offset) {
    return offset - offset % clusterSize;
  }

  private long ceilCluster(long offset) {
    return floorCluster(offset + clusterSize - 1);
  }

  /**
   * The state of one call of {@link #compress}; zero and unchanged runs wait here until something
   * ends them.
   */
  private final class Pass {
    private final ClusterSink sink;
    private final ChangeFilter filter;
    private boolean runUnchanged; // the waiting run: unchanged clusters, else zeros
    private long runStart;
    private long runCount;
    private long zeroClusters;
    private long rawClusters;
    private long compressedClusters;
    long bytesRead;
    private long payloadBytes;

    Pass(ClusterSink sink, ChangeFilter filter) {
      this.sink = sink;
      this.filter = filter;
    }

    void zeros(long first, long count) {
      if (filter == null) {
        run(false, first, count);
        zeroClusters += count;
        return;
      }
      long end = first + count;
      for (long g = first; g < end; ) {
        long same = filter.unchangedZeros(g, end - g); // a hole that was a hole: one run
        if (same > 0) {
          run(true, g, same);
          g += same;
        } else {
          filter.changed(g, null); // counted as changed: data before, zeros now
          run(false, g, 1);
          zeroClusters++;
          g++;
        }
      }
    }

    private void run(boolean unchanged, long first, long count) {
      if (runCount > 0 && unchanged == runUnchanged && first == runStart + runCount) {
        runCount += count;
      } else {
        flushRun();
        runUnchanged = unchanged;
        runStart = first;
        runCount = count;
      }
    }

    void data(long guest, ByteBuffer cluster) {
      byte[] digest = sha == null ? null : Manifest.digest(sha, cluster);
      if (filter != null && !filter.changed(guest, digest)) {
        run(true, guest, 1);
        return;
      }
      flushRun();
      payload.clear();
      int n = compressor.compress(cluster, payload);
      if (n < 0) {
        rawClusters++;
        payloadBytes += clusterSize;
        sink.cluster(guest, ClusterKind.RAW, cluster.asReadOnlyBuffer(), digest);
      } else {
        compressedClusters++;
        payloadBytes += n;
        sink.cluster(guest, ClusterKind.COMPRESSED, payload.limit(n).asReadOnlyBuffer(), digest);
      }
    }

    private void flushRun() {
      if (runCount > 0) {
        if (runUnchanged) {
          sink.unchanged(runStart, runCount);
        } else {
          sink.zeros(runStart, runCount);
        }
        runCount = 0;
      }
    }

    RangeStats finish() {
      flushRun();
      return new RangeStats(zeroClusters, rawClusters, compressedClusters, bytesRead, payloadBytes);
    }
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      discardPrefetch();
      reader.shutdown();
      try {
        // A read still in flight must not land in a buffer after the caller moved on.
        reader.awaitTermination(1, TimeUnit.MINUTES);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      compressor.close();
    }
  }
}
