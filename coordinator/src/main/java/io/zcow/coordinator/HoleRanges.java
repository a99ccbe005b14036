package io.zcow.coordinator;

import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EntryKind;
import io.zcow.proto.RangeDone;
import io.zcow.proto.Wire;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * Tells the writer that a range is a hole, so that it completes without a task: the coordinator
 * produces, on the writer group's chunks topic and under the range's usual key, what a worker
 * would have produced for an all-zero range — one ChunkBatch with a single ZERO entry covering
 * every cluster of the range, then a RangeDone. The writer needs no special case: the ZERO run
 * fills the range's received-cluster bitmap, and duplicates (a re-run coordinator) are ignored
 * like any redelivered batch.
 *
 * <p>Thread safe (the CRC cache is synchronized).
 */
public final class HoleRanges {
  /** The attempt id of hole records: no worker read them. */
  public static final String ATTEMPT_ID = "coordinator-hole";
  public static final String ORIGIN = "coordinator";

  private final int clusterSize;
  /** CRC32C of n zero bytes, by n: every full range of a job has the same, so compute it once. */
  private final Map<Long, Integer> zeroCrcs = new HashMap<>();

  public HoleRanges(int clusterSize) {
    if (clusterSize <= 0 || Integer.bitCount(clusterSize) != 1) {
      throw new IllegalArgumentException("clusterSize must be a power of two: " + clusterSize);
    }
    this.clusterSize = clusterSize;
  }

  /** The two records for hole range {@code span} of job {@code jobId}, in the order to produce them. */
  public List<ChunkRecord> records(String jobId, Partitioner.Span span) {
    long clusters = span.clusters(clusterSize);
    ChunkBatch batch = ChunkBatch.newBuilder()
        .setFormatVersion(Wire.FORMAT_VERSION)
        .setJobId(jobId)
        .setRangeIndex(span.index())
        .setAttemptId(ATTEMPT_ID)
        .addEntries(ChunkEntry.newBuilder()
            .setKind(EntryKind.ENTRY_KIND_ZERO)
            .setCluster(span.firstCluster(clusterSize))
            .setCount(clusters))
        .build();
    RangeDone done = RangeDone.newBuilder()
        .setFormatVersion(Wire.FORMAT_VERSION)
        .setJobId(jobId)
        .setRangeIndex(span.index())
        .setAttemptId(ATTEMPT_ID)
        .setZeroClusters(clusters)
        .setBatches(1)
        .setCrc32C(zeroCrc(clusters * clusterSize))
        .setWorker(ORIGIN)
        .build();
    return List.of(
        ChunkRecord.newBuilder().setBatch(batch).build(),
        ChunkRecord.newBuilder().setDone(done).build());
  }

  private synchronized int zeroCrc(long bytes) {
    return zeroCrcs.computeIfAbsent(bytes, HoleRanges::crcOfZeros);
  }

  private static int crcOfZeros(long bytes) {
    CRC32C crc = new CRC32C();
    byte[] zeros = new byte[(int) Math.min(bytes, 1 << 20)];
    for (long left = bytes; left > 0; left -= zeros.length) {
      crc.update(zeros, 0, (int) Math.min(left, zeros.length));
    }
    return (int) crc.getValue();
  }
}
