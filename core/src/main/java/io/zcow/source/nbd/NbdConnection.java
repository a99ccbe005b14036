package io.zcow.source.nbd;

import io.zcow.RetriableException;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
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
 * without waking the caller, who wakes once, when the whole read is in. The reader thread parses
 * replies with a {@link ReplyReader}: read data lands straight in the caller's buffer.
 *
 * <p>Thread safe, but meant for one caller at a time (see {@link ConnectionPool}). Any protocol
 * violation, lost connection or overdue reply breaks the connection: every request in flight
 * fails with a {@link RetriableException} naming the server and the offset, and the connection is
 * never used again. A failed request on a sound connection (an error chunk) fails alone.
 */
final class NbdConnection implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(NbdConnection.class);
  private static final int REQUEST_BYTES = 28;

  private final NbdUri uri;
  private final Transport transport;
  private final ExportInfo info;
  private final Duration requestTimeout;
  private final Map<Long, Pending> pending = new ConcurrentHashMap<>();
  private final AtomicLong cookies = new AtomicLong(1);
  private final Object writeLock = new Object();
  private final ByteBuffer request = ByteBuffer.allocate(REQUEST_BYTES); // guarded by writeLock
  private final Thread reader;
  private volatile String broken; // why the connection is unusable; null while sound
  private volatile boolean closing;

  /**
   * The requests of one read call. Its fields are guarded by the span itself: the caller sends
   * the first requests, the reader thread the others, each as a reply lands; after a failure no
   * more are sent, and the span ends when none is in flight (so no reply can land in the buffer
   * once the caller has it back).
   */
  final class ReadSpan {
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
        Pending.Read p = new Pending.Read(this, offset + sent, dst.slice(sent, n));
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
    Pending.Status p = new Pending.Status(offset, length, context);
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

  /** The reader thread: reply after reply until the connection breaks. */
  private void readReplies() {
    ReplyReader replies = new ReplyReader(uri, transport, info, pending);
    try {
      // Once broken (closed, overdue, interrupted) the connection's requests are settled: what is
      // left in the input buffer is answers to nobody, not a protocol error.
      while (broken == null) {
        replies.next();
      }
    } catch (ReplyReader.ProtocolViolation e) {
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
