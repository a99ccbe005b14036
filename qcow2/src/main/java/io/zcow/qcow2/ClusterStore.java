package io.zcow.qcow2;

import java.io.Closeable;
import java.nio.ByteBuffer;

/**
 * Where the bytes of allocated host clusters go on their way to the file. The allocator calls
 * {@link #open}, {@link #allocate} and {@link #close} in file order from one thread at a time;
 * {@link #fill} is called from any thread, in any order, once per allocated extent.
 *
 * <p>Two strategies: {@link ClusterFillCache} (the product: whole, aligned, coalesced writes) and
 * {@link ImmediateStore} (the ablation: every payload written at once).
 */
interface ClusterStore extends Closeable {
  /**
   * Starts host cluster {@code hostCluster}; may block until there is room. {@code packed}: it
   * will receive compressed payloads back to back (its unused bytes must read as zeros).
   */
  void open(long hostCluster, boolean packed);

  /** {@code bytes} more bytes of the cluster are allocated (and will be filled). */
  void allocate(long hostCluster, int bytes);

  /** Allocation has moved past the cluster: once its allocated bytes are filled it is final. */
  void close(long hostCluster);

  /** Copies {@code src}'s remaining bytes to {@code hostOffset}; thread safe; src is not moved. */
  void fill(long hostOffset, ByteBuffer src);

  /**
   * Waits until every allocated byte is filled, then writes everything held, the cluster still
   * being filled too (padded to the alignment, and kept), and makes it durable.
   */
  void flush();

  /** Reads host bytes, from memory where this store holds newer data than the file. */
  void read(long hostOffset, ByteBuffer dst);

  /** How far allocation may run ahead of an open cluster before that cluster must be closed. */
  int capacityClusters();

  @Override
  void close();
}
