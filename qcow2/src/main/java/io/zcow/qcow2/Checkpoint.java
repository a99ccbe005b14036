package io.zcow.qcow2;

import io.zcow.CorruptException;
import java.nio.ByteBuffer;

/**
 * What an {@link ImageWriter} needs to continue from a durable point: the allocator's position and
 * the counters. Small (a few dozen bytes) so it can be committed anywhere (ZooKeeper, Kafka). The
 * bulky per-range state (bitmaps of ranges in flight, their L2 tables, completed ranges) is in the
 * state file {@code TARGET.part.state-SEQUENCE} next to the image.
 *
 * @param sequence increases with each checkpoint of an image; names its state file
 * @param nextFreeCluster first host cluster not yet allocated
 * @param cursorCluster host cluster being packed with payloads, or -1
 * @param cursorUsed bytes used in it
 * @param cursorRefcount payloads in it (its refcount)
 */
public record Checkpoint(
    long sequence,
    long nextFreeCluster,
    long cursorCluster,
    int cursorUsed,
    int cursorRefcount,
    long guestClustersDone,
    long zeroClusters,
    long rawClusters,
    long compressedClusters,
    long duplicates,
    long payloadBytes,
    long rangesComplete) {

  private static final int MAGIC = 0x5a43_4b31; // "ZCK1"
  private static final int BYTES = 4 + 8 * 10 + 4 * 2;

  public byte[] toBytes() {
    ByteBuffer b = ByteBuffer.allocate(BYTES);
    b.putInt(MAGIC).putLong(sequence).putLong(nextFreeCluster).putLong(cursorCluster)
        .putInt(cursorUsed).putInt(cursorRefcount).putLong(guestClustersDone).putLong(zeroClusters)
        .putLong(rawClusters).putLong(compressedClusters).putLong(duplicates).putLong(payloadBytes)
        .putLong(rangesComplete);
    return b.array();
  }

  public static Checkpoint fromBytes(byte[] bytes) {
    ByteBuffer b = ByteBuffer.wrap(bytes);
    if (bytes.length != BYTES || b.getInt() != MAGIC) {
      throw new CorruptException("not a zcow image checkpoint (" + bytes.length + " bytes)");
    }
    Checkpoint cp = new Checkpoint(
        b.getLong(), b.getLong(), b.getLong(), b.getInt(), b.getInt(), b.getLong(), b.getLong(),
        b.getLong(), b.getLong(), b.getLong(), b.getLong(), b.getLong());
    String problem = cp.problem();
    if (problem != null) {
      throw new CorruptException("zcow image checkpoint " + cp.sequence() + ": " + problem);
    }
    return cp;
  }

  /**
   * Refuses a checkpoint that cannot belong to an image of geometry {@code g}: allocation below the
   * image's own metadata or beyond what its refcount table can count, a cursor fuller than a
   * cluster. Called before a resume touches the file.
   *
   * @throws CorruptException naming the field and the bound
   */
  void checkFits(ImageGeometry g) {
    long mostClusters = (long) g.refcountTableEntries() * g.refcountBlockEntries();
    if (nextFreeCluster < g.firstFreeCluster() || nextFreeCluster > mostClusters) {
      throw new CorruptException(String.format("zcow image checkpoint %d: next free cluster %d is not in [%d, %d]"
          + " for this image (its metadata, and what its refcount table can count)", sequence, nextFreeCluster,
          g.firstFreeCluster(), mostClusters));
    }
    if (cursorUsed > g.clusterSize() || cursorRefcount > RefcountTable.MAX_REFCOUNT) {
      throw new CorruptException(String.format("zcow image checkpoint %d: cursor of %d bytes, refcount %d, in"
          + " %d-byte clusters", sequence, cursorUsed, cursorRefcount, g.clusterSize()));
    }
  }

  /**
   * Null when the fields can describe an image in progress, else what cannot: a resume must not
   * place clusters at negative offsets or take a negative refcount for the truth.
   */
  private String problem() {
    if (sequence < 0 || nextFreeCluster < 0) {
      return "negative sequence " + sequence + " or next free cluster " + nextFreeCluster;
    }
    if (cursorCluster < -1 || cursorCluster >= nextFreeCluster) {
      return "cursor cluster " + cursorCluster + " is not -1 or below the next free cluster " + nextFreeCluster;
    }
    if (cursorUsed < 0 || cursorRefcount < 0) {
      return "negative cursor bytes " + cursorUsed + " or refcount " + cursorRefcount;
    }
    if (guestClustersDone < 0 || zeroClusters < 0 || rawClusters < 0 || compressedClusters < 0 || duplicates < 0
        || payloadBytes < 0 || rangesComplete < 0) {
      return "a negative counter";
    }
    return null;
  }
}
