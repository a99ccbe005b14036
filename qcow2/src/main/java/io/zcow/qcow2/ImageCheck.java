package io.zcow.qcow2;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A check of a qcow2 image's metadata before zcow builds on it (the previous image of an
 * incremental): the errors {@code qemu-img check} calls corruption, in one streaming pass with
 * bounded memory.
 *
 * <p>What is checked (qcow2.txt, "Host cluster management" and "Cluster mapping"): the header;
 * the refcount table (aligned, within the file, reserved bits clear) and each refcount block it
 * names; the L1 entries the virtual size uses and every L2 table they name, entry by entry
 * (reserved bits, alignment, standard clusters and compressed payloads within the file, no copied
 * bit on a compressed entry). Every host cluster something refers to (the header, the refcount
 * table and blocks, the L1 table, the L2 tables, data clusters and each cluster a compressed
 * payload touches) must have a refcount of at least 1: a referenced cluster counted free is what
 * QEMU would hand out again and overwrite. A standard cluster with the copied bit must have a
 * refcount of exactly 1, as QEMU keeps it.
 *
 * <p>Not checked, because it would take memory in proportion to the image: leaked clusters
 * (refcount above the references, harmless for a backing file that is only read) and two
 * references sharing a cluster counted once. Internal snapshots are not walked: they only add
 * references, so the checks above stay sound for the active layer.
 *
 * <p>Memory: the used part of the L1 table (as {@link ImageReader}), one L2 table, the refcount
 * table (at most {@value #MAX_REFTABLE_BYTES} bytes) and a few refcount blocks. A 16 TiB image
 * with 64 KiB clusters has 2 GiB of L2 tables to read.
 */
public final class ImageCheck {
  /** QEMU refuses refcount tables above 8 MiB (QCOW_MAX_REFTABLE_SIZE); a little room above it. */
  static final int MAX_REFTABLE_BYTES = 32 << 20;
  private static final int SECTOR = 512;
  private static final int BLOCK_CACHE = 8;

  private final ImageFile file;
  private final Header header;
  private final int clusterBits;
  private final int clusterSize;
  private final int refcountBits;
  private final long entriesPerBlock;
  private final long[] refcountTable;
  /** The block looked up last: entries refer mostly forward, block after block. */
  private long lastIndex = -1;
  private ByteBuffer lastBlock;
  private final Map<Long, ByteBuffer> blocks = new LinkedHashMap<>(16, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<Long, ByteBuffer> eldest) {
      return size() > BLOCK_CACHE;
    }
  };

  private ImageCheck(ImageFile file, Header header) {
    this.file = file;
    this.header = header;
    this.clusterBits = header.clusterBits();
    this.clusterSize = header.clusterSize();
    this.refcountBits = 1 << header.refcountOrder();
    this.entriesPerBlock = (long) clusterSize * 8 / refcountBits;
    this.refcountTable = readRefcountTable();
  }

  /**
   * Checks {@code image}'s metadata; returns normally when it is sound.
   *
   * @throws io.zcow.CorruptException naming the image, the offset (hex) and what is wrong
   * @throws io.zcow.BadInputException when the file cannot be opened
   */
  public static void metadata(Path image) {
    try (ImageFile file = ImageFile.open(image)) {
      ByteBuffer head = ByteBuffer.allocate((int) Math.min(file.size(), Header.V3_LENGTH));
      file.readFully(head, 0, "the header");
      Header header = file.named(() -> Header.decode(head.flip()));
      new ImageCheck(file, header).run();
    }
  }

  private void run() {
    referenced(0, "the header");
    long reftable = header.refcountTableOffset();
    for (int i = 0; i < header.refcountTableClusters(); i++) {
      referenced(reftable + (long) i * clusterSize, "the refcount table");
    }
    for (int i = 0; i < refcountTable.length; i++) {
      if (refcountTable[i] != 0) {
        referenced(refcountTable[i], "refcount block " + i);
      }
    }
    ClusterMap map = new ClusterMap(file, header); // reads and checks the used L1 entries
    long l1Bytes = 8L * map.l1Entries();
    for (long at = 0; at < l1Bytes; at += clusterSize) {
      referenced(header.l1TableOffset() + at, "the L1 table");
    }
    ByteBuffer l2 = ByteBuffer.allocate(clusterSize);
    int l2Entries = clusterSize / 8;
    for (int i = 0; i < map.l1Entries(); i++) {
      long offset = map.l2Offset(i);
      if (offset == 0) {
        continue;
      }
      referenced(offset, "the L2 table of L1 entry " + i);
      file.readFully(l2.clear(), offset, "L2 table");
      l2.flip();
      for (int j = 0; j < l2Entries; j++) {
        long entry = l2.getLong();
        if (entry != 0) {
          entry(entry, offset + 8L * j, ((long) i * l2Entries + j) << clusterBits);
        }
      }
    }
  }

  private void entry(long entry, long location, long guest) {
    if (L2Entry.isCompressed(entry)) {
      compressed(entry, location, guest);
      return;
    }
    long host = file.named(() -> L2Entry.standardOffset(entry, location));
    if (host == 0) {
      return; // unallocated or zero: nothing on the host
    }
    if ((host & (clusterSize - 1)) != 0) {
      throw file.corrupt("data cluster offset 0x%x in L2 entry at 0x%x (guest 0x%x) is not cluster-aligned",
          host, location, guest);
    }
    long visible = guest < header.virtualSize() ? Math.min(clusterSize, header.virtualSize() - guest) : clusterSize;
    if ((entry & L2Entry.ZERO) == 0 && file.pastEnd(host, visible)) {
      throw file.corrupt("data cluster at 0x%x (guest 0x%x, L2 entry at 0x%x) lies past the end of the file"
          + " (size 0x%x)", host, guest, location, file.size());
    }
    long refcount = referenced(host, "the data cluster of guest 0x" + Long.toHexString(guest));
    if ((entry & L2Entry.COPIED) != 0 && refcount != 1) {
      throw file.corrupt("data cluster at 0x%x (guest 0x%x, L2 entry at 0x%x) has the copied bit set but a"
          + " refcount of %d", host, guest, location, refcount);
    }
  }

  private void compressed(long entry, long location, long guest) {
    if ((entry & L2Entry.COPIED) != 0) {
      throw file.corrupt("compressed L2 entry 0x%x at 0x%x (guest 0x%x) has the copied bit 63 set",
          entry, location, guest);
    }
    long host = L2Entry.compressedOffset(entry, clusterBits);
    int length = L2Entry.compressedReadLength(entry, clusterBits);
    long fileEnd = (file.size() + SECTOR - 1) & -SECTOR;
    if (host >= L2Entry.MAX_HOST_OFFSET || host >= file.size() || host + length > fileEnd) {
      throw file.corrupt("compressed payload at 0x%x (%d bytes, guest 0x%x, L2 entry at 0x%x) lies past the"
          + " end of the file (size 0x%x)", host, length, guest, location, file.size());
    }
    for (long c = host >>> clusterBits; c <= (host + length - 1) >>> clusterBits; c++) {
      referenced(c << clusterBits, "the compressed payload of guest 0x" + Long.toHexString(guest));
    }
  }

  /** The refcount of the host cluster at {@code offset}, which {@code what} uses; 0 is corruption. */
  private long referenced(long offset, String what) {
    long refcount = refcount(offset >>> clusterBits);
    if (refcount == 0) {
      throw file.corrupt("host cluster 0x%x holds %s but its refcount is 0", offset & -clusterSize, what);
    }
    return refcount;
  }

  private long refcount(long hostCluster) {
    long index = hostCluster / entriesPerBlock;
    if (index >= refcountTable.length || refcountTable[(int) index] == 0) {
      return 0;
    }
    if (index != lastIndex) {
      lastBlock = blocks.computeIfAbsent(index, i -> {
        ByteBuffer b = ByteBuffer.allocate(clusterSize);
        file.readFully(b, refcountTable[(int) (long) i], "refcount block " + i);
        return b.flip();
      });
      lastIndex = index;
    }
    ByteBuffer block = lastBlock;
    long e = hostCluster % entriesPerBlock;
    if (refcountBits < 8) {
      int perByte = 8 / refcountBits;
      int b = block.get((int) (e / perByte)) & 0xff;
      return (b >>> (refcountBits * (int) (e % perByte))) & ((1 << refcountBits) - 1);
    }
    int bytes = refcountBits / 8;
    long v = 0;
    for (int k = 0; k < bytes; k++) {
      v = (v << 8) | (block.get((int) (e * bytes) + k) & 0xff);
    }
    return v;
  }

  private long[] readRefcountTable() {
    long offset = header.refcountTableOffset();
    long bytes = (long) header.refcountTableClusters() * clusterSize;
    if (header.refcountTableClusters() <= 0 || bytes > MAX_REFTABLE_BYTES) {
      throw file.corrupt("refcount_table_clusters %d at header offset 0x38 is outside 1..%d",
          header.refcountTableClusters(), MAX_REFTABLE_BYTES / clusterSize);
    }
    if ((offset & (clusterSize - 1)) != 0 || file.pastEnd(offset, bytes)) {
      throw file.corrupt("refcount table at 0x%x (%d clusters, header offset 0x30) is not cluster-aligned or"
          + " lies past the end of the file (size 0x%x)", offset, header.refcountTableClusters(), file.size());
    }
    ByteBuffer raw = ByteBuffer.allocate((int) bytes);
    file.readFully(raw, offset, "the refcount table");
    raw.flip();
    long[] table = new long[(int) (bytes / 8)];
    for (int i = 0; i < table.length; i++) {
      long entry = raw.getLong();
      long location = offset + 8L * i;
      if ((entry & (SECTOR - 1)) != 0) {
        throw file.corrupt("refcount table entry 0x%x at 0x%x has reserved bits 0-8 set", entry, location);
      }
      if (entry != 0 && ((entry & (clusterSize - 1)) != 0 || file.pastEnd(entry, clusterSize))) {
        throw file.corrupt("refcount block at 0x%x (table entry at 0x%x) is not cluster-aligned or lies past the"
            + " end of the file (size 0x%x)", entry, location, file.size());
      }
      table[i] = entry;
    }
    return table;
  }
}
