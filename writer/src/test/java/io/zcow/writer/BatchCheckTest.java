package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.EntryChecksum;
import io.zcow.proto.EntryKind;
import io.zcow.proto.RangeLayout;
import org.junit.jupiter.api.Test;

/** The edge checks of a batch's unchanged runs and cluster digests (jobs by digest). */
class BatchCheckTest {
  private static final RangeLayout LAYOUT = new RangeLayout(4L << 20, 65536, 1L << 20); // 4 ranges of 16 clusters

  private static ChunkBatch batch(ChunkEntry.Builder... entries) {
    ChunkBatch.Builder b = ChunkBatch.newBuilder().setJobId("j").setRangeIndex(1);
    for (ChunkEntry.Builder e : entries) {
      b.addEntries(EntryChecksum.seal(e));
    }
    return b.build();
  }

  private static ChunkEntry.Builder unchanged(long first, long count) {
    return ChunkEntry.newBuilder().setKind(EntryKind.ENTRY_KIND_UNCHANGED).setCluster(first).setCount(count);
  }

  private static ChunkEntry.Builder raw(long cluster, int digestBytes) {
    return ChunkEntry.newBuilder().setKind(EntryKind.ENTRY_KIND_RAW).setCluster(cluster)
        .setPayload(ByteString.copyFrom(new byte[65536])).setDigest(ByteString.copyFrom(new byte[digestBytes]));
  }

  @Test
  void unchangedRunsOnlyInAJobByDigestAndInsideTheRange() {
    assertNull(BatchCheck.problem(batch(unchanged(16, 16)), LAYOUT, true));
    assertTrue(BatchCheck.problem(batch(unchanged(16, 16)), LAYOUT, false).contains("not an incremental by digest"));
    assertTrue(BatchCheck.problem(batch(unchanged(20, 13)), LAYOUT, true).contains("unchanged run 20+13 is outside"));
    assertTrue(BatchCheck.problem(batch(unchanged(20, 1).setPayload(ByteString.copyFrom(new byte[1]))), LAYOUT, true)
        .contains("carries"));
  }

  @Test
  void aDigestIs32BytesAndCoveredByTheEntryChecksum() {
    assertNull(BatchCheck.problem(batch(raw(17, 32)), LAYOUT, false));
    assertTrue(BatchCheck.problem(batch(raw(17, 31)), LAYOUT, false).contains("a digest of 31 bytes"));
    ChunkBatch flipped = batch(raw(17, 32));
    ChunkEntry e = flipped.getEntries(0);
    byte[] d = e.getDigest().toByteArray();
    d[0] ^= 1;
    ChunkBatch bad = flipped.toBuilder().setEntries(0, e.toBuilder().setDigest(ByteString.copyFrom(d))).build();
    assertTrue(BatchCheck.problem(bad, LAYOUT, false).contains("entry checksum"), BatchCheck.problem(bad, LAYOUT, false));
  }
}
