package io.zcow.worker;

import io.zcow.qcow2.ClusterKind;
import java.nio.ByteBuffer;

/**
 * Receives the clusters of a range from a {@link RangeCompressor}, in ascending guest order, each
 * cluster exactly once, on the compressing thread. An exception thrown here ends the range.
 */
public interface ClusterSink {

  /**
   * One non-zero cluster.
   *
   * @param kind {@link ClusterKind#COMPRESSED} (one zstd frame of at most cluster_size - 1 bytes)
   *     or {@link ClusterKind#RAW} (exactly cluster_size bytes); never ZERO
   * @param payload read-only; its remaining bytes are the payload, valid only during this call
   *     (the buffer is reused for the next cluster): copy what must outlive it
   */
  void cluster(long guestCluster, ClusterKind kind, ByteBuffer payload);

  /**
   * {@code count} consecutive all-zero clusters starting at {@code firstGuestCluster}. Runs are
   * coalesced: holes and zero clusters next to each other arrive as one call.
   */
  void zeros(long firstGuestCluster, long count);

  /**
   * As {@link #cluster(long, ClusterKind, ByteBuffer)}, with the SHA-256 of the cluster as read
   * when the compressor digests ({@link RangeCompressor#withDigests()}), else null.
   */
  default void cluster(long guestCluster, ClusterKind kind, ByteBuffer payload, byte[] digest) {
    cluster(guestCluster, kind, payload);
  }

  /**
   * {@code count} consecutive clusters from {@code firstGuestCluster} that a {@link ChangeFilter}
   * found unchanged since the previous image (read, not sent). Only with a filter.
   */
  default void unchanged(long firstGuestCluster, long count) {
    throw new UnsupportedOperationException("this sink takes no unchanged runs");
  }
}
