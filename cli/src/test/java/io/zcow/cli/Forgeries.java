package io.zcow.cli;

import com.github.luben.zstd.Zstd;
import com.google.protobuf.ByteString;
import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EntryChecksum;
import io.zcow.proto.EntryKind;
import io.zcow.proto.RangeDone;
import io.zcow.proto.RangeTask;
import io.zcow.proto.Wire;
import java.util.Arrays;
import java.util.Random;

/** Record values a hostile producer sends: garbage, and well-formed records that no role made. */
public final class Forgeries {
  private Forgeries() {}

  /** {@code n} random bytes (the same for the same {@code n}). */
  public static byte[] garbage(int n) {
    byte[] b = new byte[n];
    new Random(n).nextBytes(b);
    return b;
  }

  /** A COMPRESSED entry carrying {@code payload} with its correct {@link EntryChecksum}. */
  public static ChunkEntry data(long cluster, byte[] payload) {
    return EntryChecksum.seal(ChunkEntry.newBuilder().setKind(EntryKind.ENTRY_KIND_COMPRESSED).setCluster(cluster)
        .setPayload(ByteString.copyFrom(payload)));
  }

  /** A ChunkRecord holding one batch of {@code entries}. */
  public static byte[] batch(String job, long range, ChunkEntry... entries) {
    ChunkBatch.Builder b = ChunkBatch.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(job)
        .setRangeIndex(range).setAttemptId("forged");
    for (ChunkEntry e : entries) {
      b.addEntries(e);
    }
    return ChunkRecord.newBuilder().setBatch(b).build().toByteArray();
  }

  /**
   * A well-formed batch for guest cluster {@code cluster} of {@code range}: a real zstd frame of
   * one cluster of 0x5A bytes, its entry checksum right. Only a MAC tells it from a worker's;
   * accepted before the worker's copy, it makes the image differ from the source at that cluster.
   */
  public static byte[] validChecksumOverWrongData(String job, long range, long cluster, int clusterSize) {
    byte[] bytes = new byte[clusterSize];
    Arrays.fill(bytes, (byte) 0x5A);
    return batch(job, range, data(cluster, Zstd.compress(bytes, 3)));
  }

  /** A RangeDone no worker sent, claiming {@code clusters} compressed clusters. */
  public static byte[] forgedRangeDone(String job, long range, long clusters) {
    return ChunkRecord.newBuilder().setDone(RangeDone.newBuilder().setFormatVersion(Wire.FORMAT_VERSION)
        .setJobId(job).setRangeIndex(range).setAttemptId("forged").setCompressedClusters(clusters)
        .setBatches(1).setWorker("hostile")).build().toByteArray();
  }

  /** A RangeTask no coordinator sent. */
  public static byte[] task(String job, long range, long offset, long length) {
    return RangeTask.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(job).setRangeIndex(range)
        .setOffset(offset).setLength(length).build().toByteArray();
  }
}
