package io.zcow.source.nbd;

import io.zcow.RetriableException;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One connection in the transmission phase: replies come back on a reader thread of the
 * connection's own that matches them by cookie, so several requests can be in flight. A read
 * ({@link #read(ByteBuffer, long, int, int)}) is split into requests; the caller sends the first
 * few, and the reader thread sends each next one as a reply lands, so the pipeline stays full
 * without waking the caller, who wakes once, when the whole read is in. Read data lands straight
 * in the caller's buffer; headers and small chunks come through a small buffer of the reader's,
 * one system call for a reply's header and what follows it.
 *
 * <p>Thread safe, but meant for one caller at a time (see {@link ConnectionPool}). Any protocol
 * violation, lost connection or overdue reply breaks the connection: every request in flight
 * fails with a {@link RetriableException} naming the server and the offset, and the connection is
 * never used again. A failed request on a sound connection (an error chunk) fails alone.
 */
final class NbdConnection implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(NbdConnection.class);
  private static final int REQUEST_BYTES = 28;
  /** Copied into the caller's buffer for OFFSET_HOLE chunks; never written (only duplicates move). */
  private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(1 << 20);
  /**
   * The reader's buffer for headers and small chunks. A payload at least this long is read
   * straight into its place; what the buffer took of it beyond the header (at most this much) is
   * copied.
   */
  private static final int INPUT_BYTES = 16 << 10;

  private final NbdUri uri;
  private final Transport transport;
  private final ExportInfo info;
  private final Duration requestTimeout;
  private final Map<Long, Pending> pending = new ConcurrentHashMap<>();
  private final AtomicLong cookies = new AtomicLong(1);
  private final Object writeLock = new Object();
  private final ByteBuffer request = ByteBuffer.allocate(REQUEST_BYTES); // guarded by writeLock
  /** Bytes received and not yet parsed, between position and limit; owned by the reader thread. */
  private final ByteBuffer input = ByteBuffer.allocateDirect(INPUT_BYTES).limit(0);
  private final Thread reader;
  private volatile String broken; // why the connection is unusable; null while sound
  private volatile boolean closing;

  /** A request awaiting its reply; its fields belong to the reader thread until it is settled. */
  private abstract static class Pending {
    final long offset;
    final long length;
    String error; // the first error chunk's text

    Pending(long offset, long length) {
      this.offset = offset;
      this.length = length;
    }

    abstract String what();

    /** The request is over: done when {@code failure} is null. Called once, on any thread. */
    abstract void settle(RetriableException failure);
  }

  private static final class PendingRead extends Pending {
    final ReadSpan span;
    final ByteBuffer dst; // exactly length bytes, position 0
    long covered;

    PendingRead(ReadSpan span, long offset, ByteBuffer dst) {
      super(offset, dst.remaining());
      this.span = span;
      this.dst = dst;
    }

    @Override
    String what() {
      return "read of " + length + " bytes at 0x" + Long.toHexString(offset);
    }

    @Override
    void settle(RetriableException failure) {
      span.requestEnded(failure);
    }
  }

  private static final class PendingStatus extends Pending {
    final long context; // the meta context whose extents are kept; others are ignored
    final List<Extent> extents = new ArrayList<>();
    final CompletableFuture<Void> done = new CompletableFuture<>();

    PendingStatus(long offset, long length, long context) {
      super(offset, length);
      this.context = context;
    }

    @Override
    String what() {
      return "block status of " + length + " bytes at 0x" + Long.toHexString(offset);
    }

    @Override
    void settle(RetriableException failure) {
      if (failure == null) {
        done.complete(null);
      } else {
        done.completeExceptionally(failure);
      }
    }
  }

  /**
   * The requests of one read call. Its fields are guarded by the span itself: the caller sends
   * the first requests, the reader thread the others, each as a reply lands; after a failure no
   * more are sent, and the span ends when none is in flight (so no reply can land in the buffer
   * once the caller has it back).
   */
  private final class ReadSpan {
    final ByteBuffer dst; // the whole read, position 0
    final long offset;
    final int requestSize;
    final int maxInFlight;
    int sent; // bytes requested so far
    int inFlight;
    RetriableException failure; // the first one
    boolean ended;
    long progressNanos; // when a reply last landed (or the read began)

    ReadSpan(ByteBuffer dst, long offset, int requestSize, int maxInFlight) {
      this.dst = dst;
      this.offset = offset;
      this.requestSize = requestSize;
      this.maxInFlight = maxInFlight;
    }

    /** Sends requests up to the limit in flight; ends the span when nothing is left to wait for. Holding this. */
    void sendMore() {
      while (failure == null && inFlight < maxInFlight && sent < dst.limit()) {
        int n = Math.min(requestSize, dst.limit() - sent);
        PendingRead p = new PendingRead(this, offset + sent, dst.slice(sent, n));
        sent += n;
        inFlight++;
        send(Nbd.CMD_READ, p.offset, n, p); // may settle p at once (a broken connection)
      }
      if (inFlight == 0 && !ended) {
        ended = true;
        notifyAll();
      }
    }

    void requestEnded(RetriableException f) {
      synchronized (this) {
        inFlight--;
        progressNanos = System.nanoTime();
        if (f != null && failure == null) {
          failure = f;
        }
        sendMore();
      }
    }

    String what() {
      return "read of " + dst.limit() + " bytes at 0x" + Long.toHexString(offset);
    }
  }

  private NbdConnection(NbdUri uri, Transport transport, ExportInfo info, Duration requestTimeout) {
    this.uri = uri;
    this.transport = transport;
    this.info = info;
    this.requestTimeout = requestTimeout;
    this.reader = new Thread(this::readReplies, "zcow-nbd-reader " + uri.address());
    this.reader.setDaemon(true);
  }

  /**
   * Connects, negotiates and starts the reader thread.
   *
   * @throws io.zcow.BadInputException see {@link Transports#connect} and {@link Handshake#run}
   * @throws RetriableException see {@link Handshake#run}
   */
  static NbdConnection open(NbdUri uri, NbdOptions options) {
    return open(uri, options, null);
  }

  /** As {@link #open(NbdUri, NbdOptions)}, negotiating the dirty bitmap {@code bitmap} too unless it is null. */
  static NbdConnection open(NbdUri uri, NbdOptions options, String bitmap) {
    Transport t = Transports.connect(uri, options);
    Handshake.Result h = Handshake.run(t, uri, options, bitmap);
    NbdConnection c = new NbdConnection(uri, h.transport(), h.info(), options.requestTimeout());
    c.reader.start();
    return c;
  }

  ExportInfo info() {
    return info;
  }

  boolean isBroken() {
    return broken != null;
  }

  /**
   * Reads {@code dst.remaining()} bytes at {@code offset} into dst from its position on (dst's
   * position and limit are not moved), in requests of at most {@code requestSize} bytes with at
   * most {@code inFlight} of them in flight; returns when every byte is in. The caller keeps the
   * request size within the server's maximum payload and minimum block. A read that sees no reply
   * for the request timeout breaks the connection.
   *
   * @throws RetriableException naming the server and the request that failed; no request of the
   *     read is in flight any more
   */
  void read(ByteBuffer dst, long offset, int requestSize, int inFlight) {
    ReadSpan span = new ReadSpan(dst.slice(), offset, requestSize, inFlight);
    long timeout = requestTimeout.toNanos();
    boolean overdue = false;
    InterruptedException interrupted = null;
    synchronized (span) {
      span.progressNanos = System.nanoTime();
      span.sendMore();
      while (!span.ended) {
        long left = timeout - (System.nanoTime() - span.progressNanos);
        if (left <= 0) {
          overdue = true;
          break;
        }
        try {
          TimeUnit.NANOSECONDS.timedWait(span, left);
        } catch (InterruptedException e) {
          interrupted = e;
          break;
        }
      }
    }
    if (overdue) {
      String why = "no reply to the " + span.what() + " within " + requestTimeout.toMillis() + " ms";
      fail(why, null);
      joinReader(); // a late reply must never land in a buffer its caller has moved on from
      throw new RetriableException(uri.describe() + ": " + why, null);
    }
    if (interrupted != null) {
      Thread.currentThread().interrupt();
      fail("interrupted while waiting for the " + span.what(), interrupted);
      joinReader();
      throw new RetriableException(uri.describe() + ": interrupted while waiting for the " + span.what(), interrupted);
    }
    if (span.failure != null) {
      throw span.failure;
    }
  }

  /**
   * Sends NBD_CMD_BLOCK_STATUS for base:allocation; the extents come back in order from
   * {@code offset}, and may cover less than asked or run past it.
   */
  CompletableFuture<List<Extent>> blockStatus(long offset, long length) {
    if (!info.hasAllocation()) {
      throw new IllegalStateException("the server offers no base:allocation");
    }
    return blockStatus(offset, length, info.allocationContext());
  }

  /**
   * Sends NBD_CMD_BLOCK_STATUS for the dirty bitmap negotiated at open; as {@link
   * #blockStatus(long, long)}, the extents ({@link Extent#dirty()}) may cover less than asked or
   * run past it.
   */
  CompletableFuture<List<Extent>> dirtyStatus(long offset, long length) {
    if (info.bitmapContext() < 0) {
      throw new IllegalStateException("no dirty bitmap was negotiated");
    }
    return blockStatus(offset, length, info.bitmapContext());
  }

  private CompletableFuture<List<Extent>> blockStatus(long offset, long length, long context) {
    PendingStatus p = new PendingStatus(offset, length, context);
    send(Nbd.CMD_BLOCK_STATUS, offset, length, p);
    return p.done.thenApply(v -> List.copyOf(p.extents));
  }

  /**
   * Waits for a request's reply within the request timeout; an overdue reply breaks the
   * connection (a late reply must never land in a buffer its caller has moved on from).
   *
   * @throws RetriableException naming the server, the request and the reason
   */
  <T> T await(CompletableFuture<T> f, String what) {
    try {
      return f.get(requestTimeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      fail("no reply to the " + what + " within " + requestTimeout.toMillis() + " ms", null);
      joinReader();
      throw new RetriableException(uri.describe() + ": no reply to the " + what + " within "
          + requestTimeout.toMillis() + " ms", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      fail("interrupted while waiting for the " + what, e);
      joinReader();
      throw new RetriableException(uri.describe() + ": interrupted while waiting for the " + what, e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RetriableException r) {
        throw r;
      }
      throw new RetriableException(uri.describe() + ": " + what + " failed: " + e.getCause(), e.getCause());
    }
  }

  private void send(int type, long offset, long length, Pending p) {
    String why = broken;
    if (why != null) {
      p.settle(new RetriableException(uri.describe() + ": " + p.what() + " not sent: " + why, null));
      return;
    }
    long cookie = cookies.getAndIncrement();
    pending.put(cookie, p); // before the request leaves: the reply may beat the write's return
    if (broken != null) {
      // Broken meanwhile: fail() may have swept the requests in flight before this one was added.
      if (pending.remove(cookie, p)) {
        p.settle(new RetriableException(uri.describe() + ": " + p.what() + " not sent: " + broken, null));
      }
      return;
    }
    IOException failed = null;
    synchronized (writeLock) {
      request.clear();
      request.putInt(Nbd.REQUEST_MAGIC).putShort((short) 0).putShort((short) type).putLong(cookie).putLong(offset)
          .putInt((int) length).flip();
      try {
        transport.write(request);
      } catch (IOException e) {
        failed = e;
      }
    }
    if (failed != null) {
      fail("sending the " + p.what() + " failed: " + failed.getMessage(), failed); // outside writeLock: it settles requests
    }
  }

  /** Breaks the connection: closes it and fails every request in flight with {@code why}. */
  private void fail(String why, Throwable cause) {
    if (broken == null) {
      broken = why;
    }
    transport.close();
    for (Map.Entry<Long, Pending> e : pending.entrySet()) {
      if (pending.remove(e.getKey(), e.getValue())) {
        Pending p = e.getValue();
        p.settle(new RetriableException(uri.describe() + ": " + p.what() + " failed: " + why, cause));
      }
    }
  }

  private void joinReader() {
    if (Thread.currentThread() == reader) {
      return;
    }
    try {
      reader.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  // ---- the reader thread -------------------------------------------------------------------

  private void readReplies() {
    try {
      // Once broken (closed, overdue, interrupted) the connection's requests are settled: what is
      // left in the input buffer is answers to nobody, not a protocol error.
      while (broken == null) {
        fill(4);
        int magic = input.getInt(input.position());
        if (magic == Nbd.STRUCTURED_REPLY_MAGIC) {
          fill(20);
          int at = input.position();
          int flags = input.getShort(at + 4) & 0xffff;
          int type = input.getShort(at + 6) & 0xffff;
          long cookie = input.getLong(at + 8);
          long length = input.getInt(at + 16) & 0xffffffffL;
          input.position(at + 20);
          chunk(flags, type, cookie, length);
        } else if (magic == Nbd.SIMPLE_REPLY_MAGIC) {
          fill(16);
          int at = input.position();
          int error = input.getInt(at + 4);
          long cookie = input.getLong(at + 8);
          input.position(at + 16);
          simple(error, cookie);
        } else {
          throw new ProtocolViolation("reply magic 0x" + Integer.toHexString(magic));
        }
      }
    } catch (ProtocolViolation e) {
      if (broken != null) {
        return; // a reply to a request settled when the connection broke
      }
      LOG.warn("{}: protocol error: {}", uri.describe(), e.getMessage());
      fail("protocol error: " + e.getMessage(), null);
    } catch (IOException | RuntimeException e) {
      if (!closing) {
        fail(e instanceof EOFException ? "the server closed the connection" : "connection lost: " + e, e);
      }
    }
  }

  /** Makes at least {@code n} (at most {@link #INPUT_BYTES}) unparsed bytes available in {@link #input}. */
  private void fill(int n) throws IOException {
    if (input.remaining() >= n) {
      return;
    }
    input.compact();
    while (input.position() < n) {
      transport.readSome(input);
    }
    input.flip();
  }

  /** Fills {@code dst} from its position to its limit: what {@link #input} holds first, then the rest straight from the connection. */
  private void take(ByteBuffer dst) throws IOException {
    int buffered = Math.min(input.remaining(), dst.remaining());
    if (buffered > 0) {
      int at = input.position();
      dst.put(input.slice(at, buffered));
      input.position(at + buffered);
    }
    if (!dst.hasRemaining()) {
      return;
    }
    if (dst.remaining() >= INPUT_BYTES) {
      transport.readFully(dst); // a payload: into its place, no copy
    } else {
      int n = dst.remaining();
      fill(n);
      int at = input.position();
      dst.put(input.slice(at, n));
      input.position(at + n);
    }
  }

  private long readLong() throws IOException {
    fill(8);
    long v = input.getLong(input.position());
    input.position(input.position() + 8);
    return v;
  }

  private static final class ProtocolViolation extends Exception {
    ProtocolViolation(String message) {
      super(message, null, false, false);
    }
  }

  private Pending lookup(long cookie) throws ProtocolViolation {
    Pending p = pending.get(cookie);
    if (p == null) {
      throw new ProtocolViolation("a reply with cookie 0x" + Long.toHexString(cookie) + ", which no request in flight has");
    }
    return p;
  }

  private void simple(int error, long cookie) throws IOException, ProtocolViolation {
    Pending p = lookup(cookie);
    if (error == 0 && p instanceof PendingRead r) {
      if (info.structuredReplies()) {
        throw new ProtocolViolation("a simple reply to the " + p.what() + " (structured replies were negotiated)");
      }
      take(r.dst.duplicate());
      r.covered = r.length;
    } else if (error == 0 && p instanceof PendingStatus) {
      throw new ProtocolViolation("a simple reply without extents to the " + p.what());
    } else if (error != 0) {
      p.error = Nbd.errnoName(error);
    }
    finish(cookie, p);
  }

  private void chunk(int flags, int type, long cookie, long length) throws IOException, ProtocolViolation {
    if (!info.structuredReplies()) {
      throw new ProtocolViolation("a structured reply, which was not negotiated");
    }
    Pending p = lookup(cookie);
    switch (type) {
      case Nbd.REPLY_TYPE_NONE -> {
        if (length != 0 || (flags & Nbd.REPLY_FLAG_DONE) == 0) {
          throw new ProtocolViolation("NBD_REPLY_TYPE_NONE of " + length + " bytes, flags " + flags);
        }
      }
      case Nbd.REPLY_TYPE_OFFSET_DATA -> data(p, length);
      case Nbd.REPLY_TYPE_OFFSET_HOLE -> hole(p, length);
      case Nbd.REPLY_TYPE_BLOCK_STATUS -> status(p, length);
      default -> {
        if ((type & Nbd.REPLY_TYPE_ERROR_BIT) == 0) {
          throw new ProtocolViolation("reply chunk type " + type + " to the " + p.what());
        }
        error(p, type, length);
      }
    }
    if ((flags & Nbd.REPLY_FLAG_DONE) != 0) {
      finish(cookie, p);
    }
  }

  private void data(Pending p, long length) throws IOException, ProtocolViolation {
    if (!(p instanceof PendingRead r) || length < 9) {
      throw new ProtocolViolation("NBD_REPLY_TYPE_OFFSET_DATA of " + length + " bytes to the " + p.what());
    }
    long offset = readLong();
    long bytes = length - 8;
    long at = within(r, offset, bytes, "data");
    take(r.dst.slice((int) at, (int) bytes));
    r.covered += bytes;
  }

  private void hole(Pending p, long length) throws IOException, ProtocolViolation {
    if (!(p instanceof PendingRead r) || length != 12) {
      throw new ProtocolViolation("NBD_REPLY_TYPE_OFFSET_HOLE of " + length + " bytes to the " + p.what());
    }
    fill(12);
    long offset = input.getLong(input.position());
    long bytes = input.getInt(input.position() + 8) & 0xffffffffL;
    input.position(input.position() + 12);
    if (bytes == 0) {
      throw new ProtocolViolation("an empty hole at 0x" + Long.toHexString(offset));
    }
    int at = (int) within(r, offset, bytes, "hole");
    ByteBuffer z = r.dst.slice(at, (int) bytes);
    while (z.hasRemaining()) {
      z.put(ZEROS.duplicate().limit(Math.min(z.remaining(), ZEROS.capacity())));
    }
    r.covered += bytes;
  }

  /** The position in the read's buffer of a chunk, which must lie inside the request. */
  private static long within(PendingRead r, long offset, long bytes, String what) throws ProtocolViolation {
    long at = offset - r.offset;
    if (offset < r.offset || at > r.length || bytes > r.length - at) {
      throw new ProtocolViolation(what + " chunk at 0x" + Long.toHexString(offset) + " of " + bytes
          + " bytes lies outside the " + r.what());
    }
    return at;
  }

  private void status(Pending p, long length) throws IOException, ProtocolViolation {
    if (!(p instanceof PendingStatus s) || length < 12 || (length - 4) % 8 != 0) {
      throw new ProtocolViolation("NBD_REPLY_TYPE_BLOCK_STATUS of " + length + " bytes to the " + p.what());
    }
    long count = (length - 4) / 8;
    if (count > Nbd.MAX_EXTENTS_PER_CHUNK) {
      throw new ProtocolViolation("an extent list of " + count + " extents (" + length + " bytes) to the " + p.what()
          + "; at most " + Nbd.MAX_EXTENTS_PER_CHUNK + " are accepted");
    }
    ByteBuffer b = ByteBuffer.allocate((int) length);
    take(b);
    b.flip();
    long context = b.getInt() & 0xffffffffL;
    if (context != s.context) {
      return; // a context we did not ask for: ignored, as the spec allows
    }
    long at = s.offset + s.extents.stream().mapToLong(Extent::length).sum();
    for (long i = 0; i < count; i++) {
      long len = b.getInt() & 0xffffffffL;
      int flags = b.getInt();
      if (len == 0) {
        throw new ProtocolViolation("an empty extent at 0x" + Long.toHexString(at) + " in the reply to the " + p.what());
      }
      s.extents.add(new Extent(at, len, flags));
      at += len;
    }
  }

  private void error(Pending p, int type, long length) throws IOException, ProtocolViolation {
    if (length < 6 || length > Nbd.MAX_ERROR_CHUNK) {
      throw new ProtocolViolation("an error chunk of " + length + " bytes to the " + p.what());
    }
    ByteBuffer b = ByteBuffer.allocate((int) length);
    take(b);
    int error = b.getInt(0);
    int messageLength = b.getShort(4) & 0xffff;
    if (messageLength > length - 6) {
      throw new ProtocolViolation("an error chunk whose message (" + messageLength + " bytes) overruns it");
    }
    String message = new String(b.array(), 6, messageLength, StandardCharsets.UTF_8);
    String at = "";
    if (type == Nbd.REPLY_TYPE_ERROR_OFFSET && length - 6 - messageLength >= 8) {
      at = " at 0x" + Long.toHexString(b.getLong(6 + messageLength));
    }
    if (p.error == null) {
      p.error = Nbd.errnoName(error) + at + (message.isEmpty() ? "" : ": " + message);
    }
  }

  private void finish(long cookie, Pending p) {
    if (!pending.remove(cookie, p)) {
      return; // settled already: the connection broke meanwhile
    }
    if (p.error != null) {
      p.settle(new RetriableException(uri.describe() + ": the server failed the " + p.what() + ": " + p.error, null));
    } else if (p instanceof PendingRead r && r.covered != r.length) {
      p.settle(new RetriableException(uri.describe() + ": the reply to the " + p.what() + " covered " + r.covered
          + " bytes, not " + r.length, null));
    } else if (p instanceof PendingStatus s && s.extents.isEmpty()) {
      p.settle(new RetriableException(uri.describe() + ": the reply to the " + p.what()
          + " carried no extents of the context asked for", null));
    } else {
      p.settle(null);
    }
  }

  /**
   * Ends the session: NBD_CMD_DISC when the connection is sound and idle (the polite way the spec
   * asks for), then closes it.
   */
  @Override
  public void close() {
    if (closing) {
      return;
    }
    if (broken == null && pending.isEmpty()) {
      synchronized (writeLock) {
        request.clear();
        request.putInt(Nbd.REQUEST_MAGIC).putShort((short) 0).putShort((short) Nbd.CMD_DISC)
            .putLong(cookies.getAndIncrement()).putLong(0).putInt(0).flip();
        try {
          closing = true;
          transport.write(request);
        } catch (IOException e) {
          LOG.debug("{}: NBD_CMD_DISC not sent: {}", uri.describe(), e.toString());
        }
      }
    }
    closing = true;
    fail("the connection is closed", null);
    joinReader();
  }
}
