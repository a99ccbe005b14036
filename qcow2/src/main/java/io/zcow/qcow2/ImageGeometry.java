package io.zcow.qcow2;

import io.zcow.BadInputException;

/**
 * Where everything sits in an image zcow writes, derived from the virtual size and cluster size
 * alone, so that every writer of a job (and a resumed one) agrees on it.
 *
 * <p>Layout: cluster 0 holds the header; the L1 table follows (its size is known from the virtual
 * size); then the refcount table, sized up front for the worst case so it never moves; data,
 * L2 tables and refcount blocks are allocated after that, in file order.
 *
 * @param clusterBits log2 of the cluster size, 12 to 21
 * @param virtualSize guest size in bytes, a multiple of 512
 */
public record ImageGeometry(int clusterBits, long virtualSize) {
  public static final int MIN_CLUSTER_BITS = 12; // a cluster smaller than the O_DIRECT block cannot be written alone
  public static final int MAX_CLUSTER_BITS = 21; // the format's limit
  /** QEMU refuses larger L1 tables (QCOW_MAX_L1_SIZE). */
  public static final long MAX_L1_BYTES = 32L << 20;
  /** QEMU refuses larger refcount tables (QCOW_MAX_REFTABLE_SIZE). */
  public static final long MAX_REFTABLE_BYTES = 8L << 20;
  /** 16-bit refcounts (refcount_order 4), as QEMU writes by default. */
  public static final int REFCOUNT_ORDER = 4;
  public static final int REFCOUNT_BITS = 1 << REFCOUNT_ORDER;
  /** Host offsets must stay below 2^56 (bits 9-55 of an entry). */
  public static final long MAX_HOST_OFFSET = 1L << 56;

  public ImageGeometry {
    if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
      throw new BadInputException(
          "cluster size " + (1L << Math.max(0, Math.min(clusterBits, 40)))
              + " is not supported: use a power of two from 4k to 2m");
    }
    if (virtualSize < 0 || virtualSize % 512 != 0) {
      throw new IllegalArgumentException("virtualSize must be a non-negative multiple of 512: " + virtualSize);
    }
  }

  /**
   * The geometry for a source of {@code sourceSize} bytes: the virtual size is rounded up to 512
   * (QEMU truncates otherwise, and the last bytes would be lost), and checked against the L1 and
   * refcount-table limits of QEMU for this cluster size.
   */
  public static ImageGeometry forSource(long sourceSize, int clusterSize) {
    if (clusterSize <= 0 || Integer.bitCount(clusterSize) != 1) {
      throw new BadInputException("cluster size " + clusterSize + " is not a power of two (use 4k to 2m)");
    }
    if (sourceSize < 0) {
      throw new BadInputException("source size " + sourceSize + " is negative");
    }
    long virtualSize = (sourceSize + 511) & ~511L;
    ImageGeometry g = new ImageGeometry(Integer.numberOfTrailingZeros(clusterSize), virtualSize);
    g.checkLimits();
    return g;
  }

  private void checkLimits() {
    long maxGuest = maxVirtualSize(clusterBits);
    if (virtualSize > maxGuest) {
      throw new BadInputException(
          "a " + virtualSize + "-byte disk is too large for " + (clusterSize() >> 10)
              + " KiB clusters (at most " + maxGuest + " bytes: QEMU limits the L1 table to 32 MiB and"
              + " the refcount table to 8 MiB); use a larger --cluster-size");
    }
  }

  /** The largest virtual size this cluster size allows under both of QEMU's table limits. */
  public static long maxVirtualSize(int clusterBits) {
    long cs = 1L << clusterBits;
    long byL1 = (MAX_L1_BYTES / 8) * (cs / 8) * cs;
    // The refcount table is sized for the worst-case file, metadata included (see
    // worstCaseHostClusters), and QEMU refuses to open an image whose table exceeds 8 MiB. A
    // closed formula for "twice the guest" misses the L2 tables and refcount blocks and overshoots
    // by a few clusters of table, so search for the largest size whose table fits; the table size
    // only grows with the virtual size. The L1 bound comes first: it keeps l1Size() in an int.
    long lo = 0;
    long hi = Math.min(byL1, MAX_HOST_OFFSET / 4) / 512;
    while (lo < hi) {
      long mid = (lo + hi + 1) >>> 1;
      if (new ImageGeometry(clusterBits, mid * 512).refcountTableFitsQemu()) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo * 512;
  }

  private boolean refcountTableFitsQemu() {
    return (long) refcountTableClusters() * clusterSize() <= MAX_REFTABLE_BYTES;
  }

  public int clusterSize() {
    return 1 << clusterBits;
  }

  /** Guest clusters, the last one possibly partial. */
  public long guestClusters() {
    return ceilDiv(virtualSize, clusterSize());
  }

  /** Entries in one L2 table (one cluster of 8-byte entries). */
  public int l2Entries() {
    return clusterSize() / 8;
  }

  public long l2Tables() {
    return ceilDiv(guestClusters(), l2Entries());
  }

  /** Entries in the L1 table: one per L2 table. */
  public int l1Size() {
    return (int) l2Tables();
  }

  public int l1Clusters() {
    // An empty disk has no L1 table at all: a cluster reserved for it would be a leak.
    return (int) ceilDiv((long) l1Size() * 8, clusterSize());
  }

  public long l1Offset() {
    return clusterSize();
  }

  /** Host clusters one refcount block covers. */
  public int refcountBlockEntries() {
    return clusterSize() * 8 / REFCOUNT_BITS;
  }

  public long refcountTableOffset() {
    return (1L + l1Clusters()) * clusterSize();
  }

  /**
   * Host clusters the image can ever need: metadata plus every guest cluster stored raw, and as
   * much again for compressed clusters whose packing wastes space (a payload that cannot cross
   * into a taken cluster moves the byte cursor to a fresh one). Generous on purpose: the refcount
   * table is sized from it once and never moves.
   */
  public long worstCaseHostClusters() {
    long data = 2 * guestClusters() + 16;
    long fixed = 1 + l1Clusters() + l2Tables();
    long clusters = data + fixed;
    // Refcount table and blocks count themselves; iterate to the fixed point (converges at once).
    long rtClusters = 1;
    for (int i = 0; i < 4; i++) {
      long blocks = ceilDiv(clusters + rtClusters, refcountBlockEntries()) + 1;
      long total = clusters + rtClusters + blocks;
      rtClusters = Math.max(1, ceilDiv(ceilDiv(total, refcountBlockEntries()) * 8, clusterSize()));
    }
    return clusters + rtClusters + ceilDiv(clusters + rtClusters, refcountBlockEntries()) + 1;
  }

  public int refcountTableClusters() {
    long blocks = ceilDiv(worstCaseHostClusters(), refcountBlockEntries());
    return (int) Math.max(1, ceilDiv(blocks * 8, clusterSize()));
  }

  /** Entries of the refcount table (one per refcount block it can point to). */
  public int refcountTableEntries() {
    return refcountTableClusters() * (clusterSize() / 8);
  }

  /** The first host cluster after header, L1 and refcount table: where allocation starts. */
  public long firstFreeCluster() {
    return 1L + l1Clusters() + refcountTableClusters();
  }

  public static long ceilDiv(long a, long b) {
    return (a + b - 1) / b;
  }
}
