package io.zcow.writer;

import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.EntryChecksum;
import io.zcow.proto.EntryKind;
import io.zcow.proto.RangeLayout;

/**
 * Checks a ChunkBatch against its job before anything of it is allocated: its range, and every
 * entry's kind, cluster index (inside the range), count, payload size and {@link EntryChecksum}.
 * Space allocated for a payload that is then refused would never fill and would leak a refcount.
 *
 * <p>Every entry's checksum is compared, zero runs included: the chunk consumer skips Kafka's own
 * CRC, and an index or count changed at rest or in a fetch can still lie inside the range, where
 * only the checksum over kind, cluster, count and payload tells it from a worker's.
 */
final class BatchCheck {
  private BatchCheck() {}

  /** Null when the batch is good, else why not; a job that is not by digest takes no UNCHANGED runs. */
  static String problem(ChunkBatch batch, RangeLayout layout) {
    return problem(batch, layout, false);
  }

  /** As {@link #problem(ChunkBatch, RangeLayout)}; {@code byDigest}: UNCHANGED runs are allowed. */
  static String problem(ChunkBatch batch, RangeLayout layout, boolean byDigest) {
    long range = batch.getRangeIndex();
    if (!layout.contains(range)) {
      return "range " + Long.toUnsignedString(range) + " is outside the job's " + layout.ranges() + " ranges";
    }
    long first = layout.firstCluster(range);
    long end = layout.endCluster(range);
    int cs = layout.clusterSize();
    for (int i = 0; i < batch.getEntriesCount(); i++) {
      ChunkEntry e = batch.getEntries(i);
      long c = e.getCluster();
      if (c < first || c >= end) {
        return "entry " + i + ": cluster " + Long.toUnsignedString(c) + " is outside range " + range + " (clusters "
            + first + ".." + (end - 1) + ")";
      }
      int n = e.getPayload().size();
      switch (e.getKind()) {
        case ENTRY_KIND_ZERO, ENTRY_KIND_UNCHANGED -> {
          String what = e.getKind() == EntryKind.ENTRY_KIND_ZERO ? "zero" : "unchanged";
          if (e.getKind() == EntryKind.ENTRY_KIND_UNCHANGED && !byDigest) {
            return "entry " + i + ": an unchanged run in a job that is not an incremental by digest";
          }
          if (e.getCount() < 1 || e.getCount() > end - c) {
            return "entry " + i + ": " + what + " run " + c + "+" + Long.toUnsignedString(e.getCount())
                + " is outside range " + range;
          }
          if (n != 0 || !e.getDigest().isEmpty()) {
            return "entry " + i + ": " + what + " run carries a " + n + "-byte payload or a digest";
          }
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
      if (!e.getDigest().isEmpty() && e.getDigest().size() != io.zcow.qcow2.Manifest.DIGEST_BYTES) {
        return "entry " + i + ": a digest of " + e.getDigest().size() + " bytes, not " + io.zcow.qcow2.Manifest.DIGEST_BYTES;
      }
      int sum = EntryChecksum.of(e);
      if (sum != e.getCrc32C()) {
        return String.format("entry %d: entry checksum of %s cluster %d is %08x, the record says %08x", i,
            e.getKind(), c, sum, e.getCrc32C());
      }
    }
    return null;
  }
}
