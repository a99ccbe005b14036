package io.zcow.qcow2;

import java.nio.ByteBuffer;

/**
 * Guest cluster to L2 entry, for reading (qcow2.txt, "Cluster mapping"): the part of the L1 table
 * the virtual size uses is read and checked once, L2 tables are loaded on demand through a small
 * LRU so memory does not grow with the disk. Thread safe.
 */
final class ClusterMap {
  /** L2 tables kept decoded: one covers 512 MiB of guest at 64 KiB clusters, 2 MiB at 4 KiB. */
  private static final long L2_CACHE_BYTES = 16L << 20;
  private static final int L2_CACHE_MAX_TABLES = 16;

  /** An L2 entry and where it sits in the file (for error messages). Entry 0: unallocated. */
  record Lookup(long entry, long location) {
    static final Lookup UNALLOCATED = new Lookup(0, 0);
  }

  private final ImageFile file;
  private final int clusterSize;
  /** Checked L2 table offset for each L1 index the virtual size uses; 0 = no L2 table. */
  private final long[] l2Offsets;
  private final L2TableCache l2Cache;

  ClusterMap(ImageFile file, Header header) {
    this.file = file;
    this.clusterSize = header.clusterSize();
    this.l2Offsets = readL1(header);
    int tables = (int) Math.max(2, Math.min(L2_CACHE_MAX_TABLES, L2_CACHE_BYTES / clusterSize));
    this.l2Cache = new L2TableCache(tables, this::loadL2);
  }

  Lookup lookup(long guestCluster) {
    int l2Entries = clusterSize / 8;
    long l2Offset = l2Offsets[(int) (guestCluster / l2Entries)];
    if (l2Offset == 0) {
      return Lookup.UNALLOCATED;
    }
    int index = (int) (guestCluster % l2Entries);
    return new Lookup(l2Cache.get(l2Offset)[index], l2Offset + 8L * index);
  }

  /** How many L1 entries the virtual size uses. */
  int l1Entries() {
    return l2Offsets.length;
  }

  /** The checked L2 table offset of L1 entry {@code index}; 0 when it has no L2 table. */
  long l2Offset(int index) {
    return l2Offsets[index];
  }

  private long[] readL1(Header header) {
    long virtualSize = header.virtualSize();
    int l1Size = header.l1Size();
    long l1Offset = header.l1TableOffset();
    if (virtualSize < 0) {
      throw file.corrupt("virtual size 0x%x at header offset 0x18 is negative", virtualSize);
    }
    if (l1Size < 0 || l1Size > ImageGeometry.MAX_L1_BYTES / 8) {
      throw file.corrupt("l1_size %d at header offset 0x24 is outside 0..%d (QEMU's 32 MiB L1 limit)",
          l1Size, ImageGeometry.MAX_L1_BYTES / 8);
    }
    long needed = ceilDiv(ceilDiv(virtualSize, clusterSize), clusterSize / 8);
    if (l1Size < needed) {
      throw file.corrupt("l1_size %d at header offset 0x24 is too small for virtual size 0x%x (needs %d entries)",
          l1Size, virtualSize, needed);
    }
    if (l1Size > 0 && (l1Offset & (clusterSize - 1)) != 0) {
      throw file.corrupt("L1 table offset 0x%x at header offset 0x28 is not cluster-aligned", l1Offset);
    }
    if (l1Size > 0 && file.pastEnd(l1Offset, 8L * l1Size)) {
      throw file.corrupt("L1 table at 0x%x (l1_size %d) lies past the end of the file (size 0x%x)",
          l1Offset, l1Size, file.size());
    }
    // Entries past what the virtual size uses are never read (snapshots may keep VM state there).
    ByteBuffer raw = ByteBuffer.allocate((int) needed * 8);
    file.readFully(raw, l1Offset, "the L1 table");
    raw.flip();
    long[] offsets = new long[(int) needed];
    for (int i = 0; i < offsets.length; i++) {
      long location = l1Offset + 8L * i;
      long entry = raw.getLong();
      long l2 = file.named(() -> L2Entry.l2TableOffset(entry, location));
      if (l2 != 0 && (l2 & (clusterSize - 1)) != 0) {
        throw file.corrupt("L2 table offset 0x%x in L1 entry at 0x%x is not cluster-aligned", l2, location);
      }
      if (l2 != 0 && file.pastEnd(l2, clusterSize)) {
        throw file.corrupt("L2 table at 0x%x (L1 entry at 0x%x) lies past the end of the file (size 0x%x)",
            l2, location, file.size());
      }
      offsets[i] = l2;
    }
    return offsets;
  }

  private long[] loadL2(long offset) {
    ByteBuffer b = ByteBuffer.allocate(clusterSize);
    file.readFully(b, offset, "L2 table");
    long[] table = new long[clusterSize / 8];
    b.flip().asLongBuffer().get(table);
    return table;
  }

  /** Ceiling division that cannot overflow (a corrupt header may hold any virtual size). */
  private static long ceilDiv(long a, long b) {
    return a / b + (a % b == 0 ? 0 : 1);
  }
}
