package io.zcow.qcow2;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Decoders for concurrent readers: a {@link PayloadDecoder} is not thread safe and holds native
 * zstd state, so each reading thread borrows one (with its buffers) and gives it back. The pool
 * holds at most as many as have been in use at once. Thread safe.
 */
final class DecoderPool implements AutoCloseable {
  private final int clusterSize;
  /** Guarded by itself. */
  private final Deque<Decoding> idle = new ArrayDeque<>();
  private boolean closed; // guarded by idle

  DecoderPool(int clusterSize) {
    this.clusterSize = clusterSize;
  }

  Decoding take() {
    synchronized (idle) {
      Decoding d = idle.pollFirst();
      if (d != null) {
        return d;
      }
    }
    return new Decoding(clusterSize);
  }

  /** Takes a decoding back; one returned after {@link #close()} is closed at once. */
  void release(Decoding d) {
    synchronized (idle) {
      if (!closed) {
        idle.addFirst(d);
        return;
      }
    }
    d.close();
  }

  @Override
  public void close() {
    synchronized (idle) {
      closed = true;
      for (Decoding d : idle) {
        d.close();
      }
      idle.clear();
    }
  }

  /**
   * One thread's decoder and buffers. It remembers the guest cluster it decoded last, so small
   * sequential reads inside one compressed cluster decode it once.
   */
  static final class Decoding implements AutoCloseable {
    final PayloadDecoder decoder;
    /** The decoded cluster: valid for {@link #cluster} unless that is -1. */
    final ByteBuffer out;
    long cluster = -1;
    private ByteBuffer payload;

    private Decoding(int clusterSize) {
      decoder = new PayloadDecoder(clusterSize);
      out = ByteBuffer.allocate(clusterSize);
      payload = ByteBuffer.allocate(clusterSize + 512);
    }

    /** A cleared buffer of exactly {@code length} bytes (a payload may span up to two clusters). */
    ByteBuffer payload(int length) {
      if (payload.capacity() < length) {
        payload = ByteBuffer.allocate(length);
      }
      return payload.clear().limit(length);
    }

    @Override
    public void close() {
      decoder.close();
    }
  }
}
