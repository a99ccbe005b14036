package io.zcow.writer;

import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.RangeLayout;
import java.util.zip.CRC32C;

/**
 * Checks a ChunkBatch against its job before anything of it is allocated: its range, and every
 * entry's kind, cluster index (inside the range), count, payload size and CRC32C. Space allocated
 * for a payload that is then refused would never fill and would leak a refcount.
 */
final class BatchCheck {
  private BatchCheck() {}

  /** Null when the batch is good, else why not. */
  static String problem(ChunkBatch batch, RangeLayout layout) {
    long range = batch.getRangeIndex();
    if (!layout.contains(range)) {
      return "range " + Long.toUnsignedString(range) + " is outside the job's " + layout.ranges() + " ranges";
    }
    long first = layout.firstCluster(range);
    long end = layout.endCluster(range);
    int cs = layout.clusterSize();
    CRC32C crc = new CRC32C();
    for (int i = 0; i < batch.getEntriesCount(); i++) {
      ChunkEntry e = batch.getEntries(i);
      long c = e.getCluster();
      if (c < first || c >= end) {
        return "entry " + i + ": cluster " + Long.toUnsignedString(c) + " is outside range " + range + " (clusters "
            + first + ".." + (end - 1) + ")";
      }
      int n = e.getPayload().size();
      switch (e.getKind()) {
        case ENTRY_KIND_ZERO -> {
          if (e.getCount() < 1 || e.getCount() > end - c) {
            return "entry " + i + ": zero run " + c + "+" + Long.toUnsignedString(e.getCount()) + " is outside range "
                + range;
          }
          if (n != 0) {
            return "entry " + i + ": zero run carries a " + n + "-byte payload";
          }
          continue;
        }
        case ENTRY_KIND_RAW -> {
          if (n != cs) {
            return "entry " + i + ": raw cluster " + c + " has " + n + " bytes, not " + cs;
          }
        }
        case ENTRY_KIND_COMPRESSED -> {
          if (n < 1 || n > cs - 1) {
            return "entry " + i + ": compressed cluster " + c + " has " + n + " bytes (must be 1.." + (cs - 1) + ")";
          }
        }
        default -> {
          return "entry " + i + ": unknown kind " + e.getKindValue();
        }
      }
      crc.reset();
      crc.update(e.getPayload().asReadOnlyByteBuffer());
      if ((int) crc.getValue() != e.getCrc32C()) {
        return String.format("entry %d: CRC32C of cluster %d is %08x, the record says %08x", i, c,
            (int) crc.getValue(), e.getCrc32C());
      }
    }
    return null;
  }
}
