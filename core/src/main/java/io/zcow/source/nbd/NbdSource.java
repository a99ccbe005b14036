package io.zcow.source.nbd;

import io.zcow.BadInputException;
import io.zcow.RetriableException;
import io.zcow.source.Source;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Objects;

/**
 * An NBD export read over the network ({@link NbdUri}).
 *
 * <p>Each thread reading at once gets a connection of its own (up to {@link
 * NbdOptions#connections()}), and a read keeps up to {@link NbdOptions#requestsInFlight()}
 * requests of {@link NbdOptions#requestSize()} bytes in flight (a new one leaves as each reply
 * lands), never larger than the server's maximum nor off its minimum block. Holes are what {@code base:allocation} marks
 * NBD_STATE_ZERO; without that context every byte counts as data.
 *
 * <p>Thread safe. Read failures (a server gone, a protocol error, a reply overdue) are {@link
 * RetriableException}s naming the export and offset; the broken connection is replaced by the
 * next read.
 */
public final class NbdSource implements Source {
  private final NbdUri uri;
  private final ExportInfo info;
  private final int requestSize;
  private final int inFlight;
  private final ConnectionPool pool;
  private final AllocationMap allocation; // null: the server offers no base:allocation

  private NbdSource(NbdUri uri, NbdOptions options, NbdConnection first) {
    this.uri = uri;
    this.info = first.info();
    this.requestSize = info.requestSize(options.requestSize());
    this.inFlight = options.requestsInFlight();
    // Several connections are safe for reading when the server says so, or the export is
    // read-only (nothing can change between connections' caches).
    int limit = info.multiConn() || info.readOnly() ? options.connections() : 1;
    this.pool = new ConnectionPool(uri, options, first, limit);
    this.allocation = info.hasAllocation() ? new AllocationMap(info.size(), info.minBlock(), this::blockStatus) : null;
  }

  /**
   * Connects and negotiates one connection (more follow as threads read at once).
   *
   * @throws BadInputException the export cannot be reached or does not exist, TLS is demanded but
   *     not configured, credentials are unusable
   * @throws RetriableException the server broke the protocol, closed the connection or did not
   *     answer in time
   */
  public static NbdSource open(NbdUri uri, NbdOptions options) {
    Objects.requireNonNull(uri, "uri");
    Objects.requireNonNull(options, "options");
    return new NbdSource(uri, options, NbdConnection.open(uri, options));
  }

  public NbdUri uri() {
    return uri;
  }

  /** Bytes per read request, as settled with the server. */
  public int requestSize() {
    return requestSize;
  }

  /** True when the server marks zero extents (base:allocation). */
  public boolean seesHoles() {
    return allocation != null;
  }

  @Override
  public long size() {
    return info.size();
  }

  @Override
  public String describe() {
    return uri.describe();
  }

  @Override
  public int read(ByteBuffer dst, long offset) {
    if (offset < 0) {
      throw new IllegalArgumentException("offset must not be negative: " + offset);
    }
    long size = info.size();
    int want = (int) Math.max(0, Math.min(dst.remaining(), size - offset));
    if (want == 0) {
      return 0;
    }
    int min = info.minBlock();
    long start = offset - offset % min;
    long end = Math.min(size, ceil(offset + want, min));
    if (start == offset && (end == offset + want)) {
      readAligned(dst.duplicate().limit(dst.position() + want), offset);
    } else {
      // Off the server's minimum block: read the blocks around it and copy out the part asked for.
      ByteBuffer window = ByteBuffer.allocate((int) (end - start));
      readAligned(window, start);
      window.position((int) (offset - start)).limit((int) (offset - start + want));
      dst.duplicate().put(window);
    }
    return want;
  }

  private static long ceil(long x, int block) {
    return (x + block - 1) / block * block;
  }

  /**
   * Reads b's remaining bytes at offset over one connection, with requests pipelined: the
   * connection keeps {@link #inFlight} in flight until the last is sent.
   */
  private void readAligned(ByteBuffer b, long offset) {
    NbdConnection c = borrow(offset);
    try {
      c.read(b, offset, requestSize, inFlight);
    } finally {
      pool.giveBack(c);
    }
  }

  private NbdConnection borrow(long offset) {
    try {
      return pool.borrow();
    } catch (BadInputException e) {
      // The export was there when the source opened: now it is a failure to retry, not bad input.
      throw new RetriableException("reading at 0x" + Long.toHexString(offset) + ": " + e.getMessage(), e);
    }
  }

  private List<Extent> blockStatus(long offset, long length) {
    NbdConnection c = borrow(offset);
    try {
      return c.await(c.blockStatus(offset, length), "block status of " + length + " bytes at 0x" + Long.toHexString(offset));
    } finally {
      pool.giveBack(c);
    }
  }

  /** See {@link Source#nextData}: the next byte not in an NBD_STATE_ZERO extent. */
  @Override
  public long nextData(long offset) {
    if (offset < 0) {
      throw new IllegalArgumentException("offset must not be negative: " + offset);
    }
    if (offset >= size()) {
      return size();
    }
    return allocation == null ? offset : allocation.nextData(offset);
  }

  /** See {@link Source#nextHole}: the next byte of an NBD_STATE_ZERO extent. */
  @Override
  public long nextHole(long offset) {
    if (offset < 0) {
      throw new IllegalArgumentException("offset must not be negative: " + offset);
    }
    if (offset >= size()) {
      return size();
    }
    return allocation == null ? size() : allocation.nextHole(offset);
  }

  @Override
  public void close() {
    pool.close();
  }

  @Override
  public String toString() {
    return describe();
  }
}
