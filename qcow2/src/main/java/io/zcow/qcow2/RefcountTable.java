package io.zcow.qcow2;

import io.zcow.CorruptException;
import java.nio.ByteBuffer;
import java.util.TreeMap;

/**
 * Refcounts of a streaming image, counted as host clusters are allocated.
 *
 * <p>Allocation only moves forward, so a refcount block whose clusters all lie behind the
 * allocation front can no longer change: it is written once and dropped. Only the blocks under
 * the front stay in memory (usually one), whatever the size of the disk. The refcount table itself
 * sits at a fixed place, sized for the worst case by {@link ImageGeometry}. 16-bit refcounts.
 *
 * <p>Not thread safe: the image writer's allocation lock guards it.
 */
final class RefcountTable {
  static final int MAX_REFCOUNT = 0xffff;

  private final ImageGeometry geometry;
  private final DirectFile file;
  private final int cs;
  private final int entriesPerBlock;
  /** The refcount table as it goes to disk: one 8-byte offset per block. */
  private final ByteBuffer table;
  /** Blocks not yet final, by index. */
  private final TreeMap<Long, ByteBuffer> live = new TreeMap<>();

  RefcountTable(ImageGeometry geometry, DirectFile file) {
    this.geometry = geometry;
    this.file = file;
    this.cs = geometry.clusterSize();
    this.entriesPerBlock = geometry.refcountBlockEntries();
    this.table = DirectFile.allocateAligned(geometry.refcountTableClusters() * cs, file.alignment());
  }

  long blockIndex(long hostCluster) {
    return hostCluster / entriesPerBlock;
  }

  boolean hasBlock(long blockIndex) {
    return blockIndex < tableEntries() && table.getLong((int) (blockIndex * 8)) != 0;
  }

  private long tableEntries() {
    return table.capacity() / 8;
  }

  /** Records that block {@code blockIndex} lives in host cluster {@code hostCluster}. */
  void placeBlock(long blockIndex, long hostCluster) {
    if (blockIndex >= tableEntries()) {
      throw new IllegalStateException("refcount table of " + tableEntries() + " entries cannot hold block " + blockIndex);
    }
    table.putLong((int) (blockIndex * 8), hostCluster * cs);
    live.put(blockIndex, DirectFile.allocateAligned(cs, file.alignment()));
  }

  void increment(long hostCluster) {
    ByteBuffer block = liveBlock(hostCluster);
    int i = (int) (hostCluster % entriesPerBlock) * 2;
    int v = Short.toUnsignedInt(block.getShort(i));
    if (v == MAX_REFCOUNT) {
      throw new IllegalStateException("refcount of host cluster " + hostCluster + " would overflow");
    }
    block.putShort(i, (short) (v + 1));
  }

  int get(long hostCluster) {
    ByteBuffer block = live.get(blockIndex(hostCluster));
    return block == null ? -1 : Short.toUnsignedInt(block.getShort((int) (hostCluster % entriesPerBlock) * 2));
  }

  void set(long hostCluster, int value) {
    liveBlock(hostCluster).putShort((int) (hostCluster % entriesPerBlock) * 2, (short) value);
  }

  private ByteBuffer liveBlock(long hostCluster) {
    ByteBuffer block = live.get(blockIndex(hostCluster));
    if (block == null) {
      throw new IllegalStateException("no live refcount block for host cluster " + hostCluster);
    }
    return block;
  }

  /** Blocks covering only clusters below {@code front} are final: write them and let them go. */
  void retireBelow(long front) {
    while (!live.isEmpty()) {
      long first = live.firstKey();
      if ((first + 1) * entriesPerBlock > front) {
        return;
      }
      writeBlock(first, live.pollFirstEntry().getValue());
    }
  }

  /** Writes the blocks still in memory (they stay there) and the table. */
  void writeLiveAndTable() {
    live.forEach(this::writeBlock);
    file.write(table.duplicate().clear(), geometry.refcountTableOffset());
  }

  private void writeBlock(long index, ByteBuffer block) {
    file.write(block.duplicate().clear(), table.getLong((int) (index * 8)));
  }

  /**
   * Rebuilds the state of a checkpoint from the file: the table without blocks placed after it,
   * the blocks under the allocation front reloaded, counts of clusters allocated after it cleared
   * and the open cluster's count restored (it may have grown on disk since).
   */
  void restore(long nextFree, long front, long cursorCluster, int cursorRefcount) {
    int n = file.read(table.duplicate().clear(), geometry.refcountTableOffset());
    if (n < table.capacity()) {
      throw new CorruptException(String.format(
          "refcount table at 0x%x is truncated (%d of %d bytes)", geometry.refcountTableOffset(), n, table.capacity()));
    }
    long limit = nextFree * cs;
    for (long i = 0; i < tableEntries(); i++) {
      long off = table.getLong((int) (i * 8));
      if (off >= limit) {
        table.putLong((int) (i * 8), 0);
      } else if (off != 0 && (i + 1) * entriesPerBlock > front) {
        ByteBuffer block = DirectFile.allocateAligned(cs, file.alignment());
        if (file.read(block.duplicate(), off) < cs) {
          throw new CorruptException(String.format("refcount block %d at 0x%x is truncated", i, off));
        }
        live.put(i, block);
        for (long c = Math.max(nextFree, i * entriesPerBlock); c < (i + 1) * entriesPerBlock; c++) {
          block.putShort((int) (c % entriesPerBlock) * 2, (short) 0);
        }
      }
    }
    if (cursorCluster >= 0) {
      set(cursorCluster, cursorRefcount);
    }
  }
}
