package io.zcow.source.nbd;

import io.zcow.BadInputException;
import io.zcow.RetriableException;
import io.zcow.source.Source;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;

/**
 * An NBD export read over the network ({@link NbdUri}).
 *
 * <p>Each thread reading at once gets a connection of its own (up to {@link
 * NbdOptions#connections()}), and a read sends up to {@link NbdOptions#requestsInFlight()}
 * requests of {@link NbdOptions#requestSize()} bytes before awaiting replies, never larger than
 * the server's maximum nor off its minimum block. Holes are what {@code base:allocation} marks
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

  /** Reads b's remaining bytes at offset over one connection, with requests pipelined. */
  private void readAligned(ByteBuffer b, long offset) {
    NbdConnection c = borrow(offset);
    Deque<CompletableFuture<Void>> flying = new ArrayDeque<>();
    Deque<String> names = new ArrayDeque<>();
    try {
      int pos = b.position();
      while (pos < b.limit() || !flying.isEmpty()) {
        while (pos < b.limit() && flying.size() < inFlight) {
          int n = Math.min(requestSize, b.limit() - pos);
          long at = offset + (pos - b.position());
          flying.add(c.read(b.duplicate().position(pos).limit(pos + n), at));
          names.add("read of " + n + " bytes at 0x" + Long.toHexString(at));
          pos += n;
        }
        c.await(flying.peek(), names.peek());
        flying.poll();
        names.poll();
      }
    } catch (RuntimeException e) {
      settle(c, flying, names);
      throw e;
    } finally {
      pool.giveBack(c);
    }
  }

  /**
   * After a failed request, waits for the others in flight: their replies may still land in the
   * caller's buffer, which must be ours alone once read() returns.
   */
  private static void settle(NbdConnection c, Deque<CompletableFuture<Void>> flying, Deque<String> names) {
    while (!flying.isEmpty()) {
      try {
        c.await(flying.poll(), names.poll());
      } catch (RuntimeException ignored) {
        // the first failure is the one reported
      }
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
