package io.zcow.qcow2;

import java.io.Closeable;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * Writes a compressed qcow2 v3 image from guest clusters that arrive from several threads in any
 * order. STUB: the API is fixed, the implementation is in progress.
 */
public final class ImageWriter implements Closeable {
  /** Where work in progress lives: {@code TARGET.part}, renamed to TARGET by {@link #finish()}. */
  public static Path partPath(Path target) {
    return target.resolveSibling(target.getFileName() + ".part");
  }

  /** Creates {@code TARGET.part} (which must not exist) and starts a new image. */
  public static ImageWriter create(Path target, ImageOptions options) {
    throw new UnsupportedOperationException("in progress");
  }

  /**
   * Accepts one guest cluster. Thread safe; validates before it allocates (a bad payload throws
   * {@link io.zcow.CorruptException} and leaves no trace). ZERO takes an empty payload, RAW exactly
   * one cluster, COMPRESSED 1 to cluster_size - 1 bytes. The payload's position is not moved and
   * the buffer may be reused once this returns. May block while the cluster-fill cache is full.
   */
  public PutResult put(long guestCluster, ClusterKind kind, ByteBuffer payload) {
    throw new UnsupportedOperationException("in progress");
  }

  /** Accepts {@code count} guest clusters from {@code first} as zeros (holes, zero runs). */
  public void putZeros(long first, long count) {
    throw new UnsupportedOperationException("in progress");
  }

  /** True once every guest cluster has arrived. */
  public boolean isComplete() {
    throw new UnsupportedOperationException("in progress");
  }

  public ImageStats stats() {
    throw new UnsupportedOperationException("in progress");
  }

  /**
   * Finishes a complete image: writes what remains, the metadata and the header, makes it durable
   * and renames {@code TARGET.part} to TARGET (then fsyncs the directory).
   */
  public void finish() {
    throw new UnsupportedOperationException("in progress");
  }

  /** Stops and removes {@code TARGET.part} and its state files. */
  public void abort() {
    throw new UnsupportedOperationException("in progress");
  }

  /** Stops without removing anything (a later run may resume from a checkpoint). */
  @Override
  public void close() {
    throw new UnsupportedOperationException("in progress");
  }
}
