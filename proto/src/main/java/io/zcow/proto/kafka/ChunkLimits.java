package io.zcow.proto.kafka;



/**
 * How large the records of a chunks topic get, derived from the cluster size.
 *
 * <p>A ChunkBatch is closed once adding the next entry would take it past {@link
 * #TARGET_BATCH_BYTES}, so a batch holds at most that much payload, or a single entry when one
 * entry alone is larger: a raw cluster of 2 MiB travels as one record of a little over 2 MiB.
 * Kafka's defaults (1 MiB per record batch on the topic and per request in the producer) would
 * refuse it, hence these numbers.
 */
public final class ChunkLimits {
  /** Payload bytes per ChunkBatch: large enough that per-record costs vanish, small enough to stream. */
  public static final int TARGET_BATCH_BYTES = 1 << 20;
  /**
   * Room beyond the payload for everything around it: entry and batch framing (a few dozen bytes
   * per entry), the key, the record and record-batch headers (about 100 bytes).
   */
  public static final int OVERHEAD_BYTES = 64 << 10;
  /** The largest cluster zcow supports (2 MiB). */
  public static final int MAX_CLUSTER_SIZE = 1 << 21; // ImageGeometry.MAX_CLUSTER_BITS (ChunkLimitsTest checks they agree)

  private ChunkLimits() {}

  /**
   * The largest record (and record batch) a worker produces for a job of this cluster size.
   *
   * <p><b>The coordinator must create the chunks topic with {@code max.message.bytes} at least
   * this large</b> (for the largest cluster size any job on that topic uses; {@link
   * #topicMaxMessageBytes()} covers every supported size), or the broker refuses the records of
   * raw clusters larger than about 1 MiB with RecordTooLargeException and the range never
   * completes.
   */
  public static int recordBytes(int clusterSize) {
    if (clusterSize <= 0 || clusterSize > MAX_CLUSTER_SIZE) {
      throw new IllegalArgumentException("clusterSize must be 1 to " + MAX_CLUSTER_SIZE + ": " + clusterSize);
    }
    return Math.max(TARGET_BATCH_BYTES, clusterSize) + OVERHEAD_BYTES;
  }

  /**
   * {@code max.message.bytes} for a chunks topic that takes jobs of every supported cluster size
   * (4 KiB to 2 MiB): {@code recordBytes(2 MiB)}, a little over 2 MiB.
   */
  public static int topicMaxMessageBytes() {
    return recordBytes(MAX_CLUSTER_SIZE);
  }

  /**
   * The producer's {@code batch.size}: small records of several ranges that share a partition are
   * batched up to this, so a batch never exceeds {@link #recordBytes} of the smallest cluster
   * size; a record larger than this travels in a batch of its own.
   */
  public static int producerBatchBytes() {
    return TARGET_BATCH_BYTES + OVERHEAD_BYTES;
  }
}
