package io.zcow.qcow2;

/**
 * How an {@link ImageWriter} lays out and writes an image.
 *
 * @param geometry virtual size and cluster size
 * @param rangeClusters guest clusters per range (the unit of completion; the last range may be
 *     shorter); an L2 table is written once every range it covers is complete
 * @param targetCache O_DIRECT or page cache
 * @param writeCache false is the ablation: every payload written at once (read-modify-write of
 *     the aligned blocks around it under O_DIRECT), to measure what the cluster-fill cache saves
 * @param cacheBytes memory of the cluster-fill cache; it holds at most this many bytes of host
 *     clusters, and producers wait when it is full
 * @param verifyPayloads decompress every compressed payload before accepting it
 * @param codec compression type written in the header
 * @param backing the previous image of a chain when this is an incremental overlay, else null:
 *     zero clusters then get the zero flag (left unallocated the backing file would show through)
 *     and unchanged clusters ({@link ImageWriter#putUnchanged}) no L2 entry at all
 */
public record ImageOptions(
    ImageGeometry geometry,
    long rangeClusters,
    TargetCache targetCache,
    boolean writeCache,
    long cacheBytes,
    boolean verifyPayloads,
    Codec codec,
    BackingFile backing) {

  public static final long DEFAULT_RANGE_BYTES = 512L << 20;
  public static final long DEFAULT_CACHE_BYTES = 256L << 20;
  /** Direct buffers are int-indexed; keep the cache to one slab. */
  public static final long MAX_CACHE_BYTES = 1L << 30;

  public ImageOptions {
    if (rangeClusters <= 0) {
      throw new IllegalArgumentException("rangeClusters must be positive: " + rangeClusters);
    }
    if (cacheBytes < 8L * geometry.clusterSize() || cacheBytes > MAX_CACHE_BYTES) {
      throw new io.zcow.BadInputException(
          "cache size " + cacheBytes + " must hold at least 8 clusters (" + 8L * geometry.clusterSize()
              + " bytes) and at most " + MAX_CACHE_BYTES + " bytes");
    }
  }

  /** A standalone image (no backing file). */
  public ImageOptions(ImageGeometry geometry, long rangeClusters, TargetCache targetCache, boolean writeCache,
      long cacheBytes, boolean verifyPayloads, Codec codec) {
    this(geometry, rangeClusters, targetCache, writeCache, cacheBytes, verifyPayloads, codec, null);
  }

  /** Defaults: 512 MiB ranges, direct I/O where possible, the cache on, 256 MiB of it, zstd. */
  public static ImageOptions defaults(ImageGeometry geometry) {
    return new ImageOptions(
        geometry,
        Math.max(1, DEFAULT_RANGE_BYTES / geometry.clusterSize()),
        TargetCache.AUTO,
        true,
        Math.max(DEFAULT_CACHE_BYTES, 8L * geometry.clusterSize()),
        false,
        Codec.ZSTD);
  }

  public ImageOptions withRangeBytes(long rangeBytes) {
    if (rangeBytes <= 0 || rangeBytes % geometry.clusterSize() != 0) {
      throw new io.zcow.BadInputException(
          "range size " + rangeBytes + " must be a positive multiple of the cluster size " + geometry.clusterSize());
    }
    return new ImageOptions(geometry, rangeBytes / geometry.clusterSize(), targetCache, writeCache, cacheBytes, verifyPayloads, codec, backing);
  }

  public ImageOptions withTargetCache(TargetCache mode) {
    return new ImageOptions(geometry, rangeClusters, mode, writeCache, cacheBytes, verifyPayloads, codec, backing);
  }

  public ImageOptions withWriteCache(boolean on) {
    return new ImageOptions(geometry, rangeClusters, targetCache, on, cacheBytes, verifyPayloads, codec, backing);
  }

  public ImageOptions withCacheBytes(long bytes) {
    return new ImageOptions(geometry, rangeClusters, targetCache, writeCache, bytes, verifyPayloads, codec, backing);
  }

  public ImageOptions withVerifyPayloads(boolean verify) {
    return new ImageOptions(geometry, rangeClusters, targetCache, writeCache, cacheBytes, verify, codec, backing);
  }

  /** The same image as an overlay on {@code previous} (see {@link BackingFile#of}). */
  public ImageOptions withBacking(BackingFile previous) {
    if (previous != null && previous.virtualSize() > geometry.virtualSize()) {
      throw new io.zcow.BadInputException("an overlay cannot be smaller than its backing file ("
          + geometry.virtualSize() + " < " + previous.virtualSize() + " bytes)");
    }
    return new ImageOptions(geometry, rangeClusters, targetCache, writeCache, cacheBytes, verifyPayloads, codec, previous);
  }

  /** Number of ranges of the image. */
  public long ranges() {
    return ImageGeometry.ceilDiv(geometry.guestClusters(), rangeClusters);
  }
}
