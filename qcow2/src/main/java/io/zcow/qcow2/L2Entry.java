package io.zcow.qcow2;

import io.zcow.CorruptException;

/**
 * Encoding of L1 and L2 entries (qcow2.txt, "Cluster mapping").
 *
 * <p>Standard entries carry a cluster-aligned host offset in bits 9-55; bit 63 ("copied") says the
 * cluster's refcount is exactly 1, which is always true in a fresh image and which qemu-img check
 * demands (OFLAG_COPIED). Compressed entries set bit 62 and never bit 63; with
 * {@code x = 62 - (cluster_bits - 8)}, bits 0..x-1 hold the byte offset of the payload and bits
 * x..61 the number of 512-byte sectors it touches beyond the first. Below 16 KiB clusters x
 * exceeds 56, but host offsets stay below 2^56 there too: the spec demands those upper offset
 * bits be zero.
 */
public final class L2Entry {
  public static final long COPIED = 1L << 63;
  public static final long COMPRESSED = 1L << 62;
  /** Standard entry flag: the cluster reads as zeros. */
  public static final long ZERO = 1L;
  /** Bits 9-55 of a standard L1/L2 entry. */
  public static final long OFFSET_MASK = 0x00ff_ffff_ffff_fe00L;
  /** Host offsets of every kind stay below 2^56. */
  public static final long MAX_HOST_OFFSET = 1L << 56;
  /** Reserved bits of an L1 entry: 0-8 and 56-62. */
  private static final long L1_RESERVED = 0x7f00_0000_0000_01ffL;
  /** Reserved bits of a standard L2 entry: 1-8 and 56-61 (bit 0 is the zero flag). */
  private static final long L2_RESERVED = 0x3f00_0000_0000_01feL;

  private static final int SECTOR = 512;

  private L2Entry() {}

  /** An entry for an uncompressed cluster at {@code hostOffset} with refcount 1. */
  public static long standard(long hostOffset) {
    if ((hostOffset & ~OFFSET_MASK) != 0) {
      throw new IllegalArgumentException(
          "hostOffset 0x" + Long.toHexString(hostOffset) + " is not a 512-aligned offset below 2^56");
    }
    return hostOffset | COPIED;
  }

  /** Bit position where the sector count of a compressed entry starts. */
  public static int compressedShift(int clusterBits) {
    return 62 - (clusterBits - 8);
  }

  /** An entry for a compressed payload of {@code length} bytes at byte offset {@code hostOffset}. */
  public static long compressed(long hostOffset, int length, int clusterBits) {
    int x = compressedShift(clusterBits);
    if (length < 1 || hostOffset < 0 || hostOffset >= maxCompressedOffset(clusterBits)) {
      throw new IllegalArgumentException(
          "compressed payload at 0x" + Long.toHexString(hostOffset) + " length " + length
              + " cannot be encoded at cluster_bits " + clusterBits);
    }
    long additionalSectors = (hostOffset + length - 1) / SECTOR - hostOffset / SECTOR;
    long countMask = (1L << (clusterBits - 8)) - 1;
    if (additionalSectors > countMask) {
      throw new IllegalArgumentException(
          "compressed payload of " + length + " bytes is too long for cluster_bits " + clusterBits);
    }
    return COMPRESSED | (additionalSectors << x) | hostOffset;
  }

  /**
   * The first byte offset a compressed entry cannot hold: 2^x, and never more than 2^56 (at 4 KiB
   * clusters x is 58, but the spec wants offset bits beyond 55 zero). 2^49 at 2 MiB clusters.
   */
  public static long maxCompressedOffset(int clusterBits) {
    return Math.min(1L << compressedShift(clusterBits), MAX_HOST_OFFSET);
  }

  public static boolean isCompressed(long entry) {
    return (entry & COMPRESSED) != 0;
  }

  /** Byte offset of a compressed payload. */
  public static long compressedOffset(long entry, int clusterBits) {
    return entry & ((1L << compressedShift(clusterBits)) - 1);
  }

  /**
   * Bytes to read for a compressed payload: from its offset to the end of the last sector it
   * touches. The payload itself may be shorter; decompression stops at the end of its frame.
   */
  public static int compressedReadLength(long entry, int clusterBits) {
    int x = compressedShift(clusterBits);
    long sectors = ((entry >>> x) & ((1L << (clusterBits - 8)) - 1)) + 1;
    long offset = compressedOffset(entry, clusterBits);
    return (int) (sectors * SECTOR - (offset & (SECTOR - 1)));
  }

  /** Host offset of a standard entry; throws if reserved bits are set. */
  public static long standardOffset(long entry, long entryLocation) {
    if ((entry & L2_RESERVED) != 0) {
      throw new CorruptException(
          "L2 entry 0x" + Long.toHexString(entry) + " at 0x" + Long.toHexString(entryLocation)
              + " has reserved bits set");
    }
    return entry & OFFSET_MASK;
  }

  /** The L2 table offset of an L1 entry (0: no L2 table); throws if reserved bits are set. */
  public static long l2TableOffset(long l1Entry, long entryLocation) {
    if ((l1Entry & L1_RESERVED) != 0) {
      throw new CorruptException(
          "L1 entry 0x" + Long.toHexString(l1Entry) + " at 0x" + Long.toHexString(entryLocation)
              + " has reserved bits set");
    }
    return l1Entry & OFFSET_MASK;
  }
}
