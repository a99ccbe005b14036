package io.zcow.source.nbd;

import io.zcow.RetriableException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * The reply side of an {@link NbdConnection}, run by its reader thread: parses simple and
 * structured replies (doc/proto.md, "Transmission phase"), matches each to its request by cookie,
 * puts read data straight in the caller's buffer, collects extents and error texts, and settles a
 * request when its reply is complete. Headers and small chunks come through a small buffer, one
 * system call for a reply's header and what follows it. Anything the protocol does not allow is a
 * {@link ProtocolViolation}, after which the connection is broken by its owner.
 *
 * <p>Not thread safe: the reader thread only.
 */
final class ReplyReader {
  /** Copied into the caller's buffer for OFFSET_HOLE chunks; never written (only duplicates move). */
  private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(1 << 20);
  /**
   * The buffer for headers and small chunks. A payload at least this long is read straight into
   * its place; what the buffer took of it beyond the header (at most this much) is copied.
   */
  private static final int INPUT_BYTES = 16 << 10;

  private final NbdUri uri;
  private final Transport transport;
  private final ExportInfo info;
  private final Map<Long, Pending> pending;
  /** Bytes received and not yet parsed, between position and limit. */
  private final ByteBuffer input = ByteBuffer.allocateDirect(INPUT_BYTES).limit(0);

  /** @param pending the connection's requests in flight, by cookie (shared with the senders) */
  ReplyReader(NbdUri uri, Transport transport, ExportInfo info, Map<Long, Pending> pending) {
    this.uri = uri;
    this.transport = transport;
    this.info = info;
    this.pending = pending;
  }

  /** Reads and acts on one reply (or one chunk of a structured reply). */
  void next() throws IOException, ProtocolViolation {
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

  /** The server broke the protocol: the connection cannot be trusted any more. */
  static final class ProtocolViolation extends Exception {
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
    if (error == 0 && p instanceof Pending.Read r) {
      if (info.structuredReplies()) {
        throw new ProtocolViolation("a simple reply to the " + p.what() + " (structured replies were negotiated)");
      }
      take(r.dst.duplicate());
      r.covered = r.length;
    } else if (error == 0 && p instanceof Pending.Status) {
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
    if (!(p instanceof Pending.Read r) || length < 9) {
      throw new ProtocolViolation("NBD_REPLY_TYPE_OFFSET_DATA of " + length + " bytes to the " + p.what());
    }
    long offset = readLong();
    long bytes = length - 8;
    long at = within(r, offset, bytes, "data");
    take(r.dst.slice((int) at, (int) bytes));
    r.covered += bytes;
  }

  private void hole(Pending p, long length) throws IOException, ProtocolViolation {
    if (!(p instanceof Pending.Read r) || length != 12) {
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
  private static long within(Pending.Read r, long offset, long bytes, String what) throws ProtocolViolation {
    long at = offset - r.offset;
    if (offset < r.offset || at > r.length || bytes > r.length - at) {
      throw new ProtocolViolation(what + " chunk at 0x" + Long.toHexString(offset) + " of " + bytes
          + " bytes lies outside the " + r.what());
    }
    return at;
  }

  private void status(Pending p, long length) throws IOException, ProtocolViolation {
    if (!(p instanceof Pending.Status s) || length < 12 || (length - 4) % 8 != 0) {
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
    } else if (p instanceof Pending.Read r && r.covered != r.length) {
      p.settle(new RetriableException(uri.describe() + ": the reply to the " + p.what() + " covered " + r.covered
          + " bytes, not " + r.length, null));
    } else if (p instanceof Pending.Status s && s.extents.isEmpty()) {
      p.settle(new RetriableException(uri.describe() + ": the reply to the " + p.what()
          + " carried no extents of the context asked for", null));
    } else {
      p.settle(null);
    }
  }
}
