package io.zcow.source.nbd;

import io.zcow.BadInputException;
import io.zcow.RetriableException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import javax.net.ssl.SSLException;

/**
 * The fixed newstyle negotiation, from the server's greeting to the transmission phase:
 * NBD_OPT_STARTTLS first for nbds:// (or when the server demands TLS and credentials are given),
 * then NBD_OPT_STRUCTURED_REPLY, NBD_OPT_SET_META_CONTEXT {@code base:allocation} (which needs
 * structured replies, so it comes after; with {@code qemu:dirty-bitmap:NAME} too when a bitmap is
 * asked for), and NBD_OPT_GO asking for NBD_INFO_BLOCK_SIZE. After
 * STARTTLS the server forgets every earlier option, so all of them are sent over TLS.
 *
 * <p>The whole negotiation must end within the handshake timeout: a server that accepted the
 * connection but never greets (qemu-nbd busy with its one allowed client) is given up on.
 */
final class Handshake {
  private final NbdUri uri;
  private final NbdOptions options;
  private final String bitmap; // the dirty bitmap to ask for, or null
  private volatile Transport transport; // replaced once by STARTTLS; the watchdog closes the current one
  private volatile String phase = "the greeting";
  private boolean noZeroes;
  private boolean tls;

  /** The connection after the handshake, and what it settled. */
  record Result(Transport transport, ExportInfo info) {}

  private record Reply(int type, ByteBuffer data) {
    String message() {
      ByteBuffer d = data.duplicate();
      return d.hasRemaining() ? StandardCharsets.UTF_8.decode(d).toString() : "";
    }
  }

  /** The server answered an option with NBD_REP_ERR_TLS_REQD. */
  private static final class TlsRequired extends Exception {
    TlsRequired() {
      super(null, null, false, false);
    }
  }

  private Handshake(Transport transport, NbdUri uri, NbdOptions options, String bitmap) {
    this.bitmap = bitmap;
    this.transport = transport;
    this.uri = uri;
    this.options = options;
  }

  /**
   * Negotiates on a fresh connection; on failure the connection is closed.
   *
   * @throws BadInputException unknown export, TLS demanded but not configured, TLS refused or not
   *     verified, not an NBD server
   * @throws RetriableException the server closed the connection, or did not answer in time
   */
  static Result run(Transport transport, NbdUri uri, NbdOptions options) {
    return run(transport, uri, options, null);
  }

  /**
   * As {@link #run(Transport, NbdUri, NbdOptions)}, also negotiating {@code
   * qemu:dirty-bitmap:BITMAP} unless {@code bitmap} is null.
   *
   * @throws BadInputException also when the export has no such bitmap
   */
  static Result run(Transport transport, NbdUri uri, NbdOptions options, String bitmap) {
    Handshake h = new Handshake(transport, uri, options, bitmap);
    Watchdog dog = Watchdog.arm(options.handshakeTimeout(), () -> h.transport.close());
    try {
      ExportInfo info = h.negotiate();
      if (dog.fired()) {
        throw new IOException("closed by the watchdog");
      }
      return new Result(h.transport, info);
    } catch (IOException e) {
      h.transport.close();
      if (dog.fired()) {
        throw new RetriableException(uri.describe() + ": no answer to " + h.phase + " within "
            + options.handshakeTimeout().toMillis() + " ms (qemu-nbd serves one client at a time unless started with"
            + " -e N / --shared=N)", e);
      }
      if (e instanceof SSLException) {
        throw new BadInputException("TLS with " + uri.describe() + " failed: " + e.getMessage(), e);
      }
      throw new RetriableException(uri.describe() + ": connection lost during " + h.phase + ": " + e.getMessage(), e);
    } catch (RuntimeException e) {
      h.transport.close();
      throw e;
    } finally {
      dog.close();
    }
  }

  private ExportInfo negotiate() throws IOException {
    greet();
    if (uri.tls()) {
      startTls();
    }
    while (true) {
      try {
        return haggle();
      } catch (TlsRequired e) {
        if (tls || (options.tls() == null && !uri.tls())) {
          throw new BadInputException(uri.describe() + " requires TLS (NBD_REP_ERR_TLS_REQD): use nbds://"
              + uri.address() + "/" + uri.export() + " with a CA (--nbd-tls-ca) and, if the server asks, a client"
              + " certificate and key");
        }
        startTls(); // opportunistic TLS for nbd:// when credentials were given
      }
    }
  }

  private void greet() throws IOException {
    ByteBuffer b = ByteBuffer.allocate(18);
    transport.readFully(b);
    long magic = b.getLong(0);
    long style = b.getLong(8);
    if (magic != Nbd.NBDMAGIC) {
      throw protocol("the greeting starts with 0x" + Long.toHexString(magic) + ", not NBDMAGIC: not an NBD server?");
    }
    if (style == Nbd.OLDSTYLE_MAGIC) {
      throw protocol("the server speaks the oldstyle negotiation, which has no export names; only newstyle is supported");
    }
    if (style != Nbd.IHAVEOPT) {
      throw protocol("the greeting has 0x" + Long.toHexString(style) + " where IHAVEOPT belongs");
    }
    int flags = b.getShort(16) & 0xffff;
    if ((flags & Nbd.FLAG_FIXED_NEWSTYLE) == 0) {
      throw protocol("the server does not speak fixed newstyle negotiation");
    }
    noZeroes = (flags & Nbd.FLAG_NO_ZEROES) != 0;
    transport.write(ByteBuffer.allocate(4).putInt(0, Nbd.FLAG_FIXED_NEWSTYLE | (noZeroes ? Nbd.FLAG_NO_ZEROES : 0)));
  }

  private void startTls() throws IOException {
    if (uri.isUnix()) {
      throw new BadInputException(uri.describe() + " requires TLS, which zcow does not support over Unix sockets");
    }
    Reply r = option(Nbd.OPT_STARTTLS, ByteBuffer.allocate(0));
    if (r.type() != Nbd.REP_ACK) {
      throw new BadInputException(uri.describe() + " does not offer TLS (" + Nbd.replyName(r.type())
          + (r.message().isEmpty() ? "" : ": " + r.message()) + ")");
    }
    phase = "the TLS handshake";
    NbdTls creds = options.tls() != null ? options.tls() : new NbdTls(null, null, null);
    transport = transport.startTls(creds.context(), uri.host(), uri.port());
    tls = true;
  }

  private ExportInfo haggle() throws IOException, TlsRequired {
    Reply r = option(Nbd.OPT_STRUCTURED_REPLY, ByteBuffer.allocate(0));
    tlsRequired(r);
    boolean structured = r.type() == Nbd.REP_ACK;
    if (!structured && bitmap != null) {
      throw new BadInputException(uri.describe() + " offers no structured replies, so no dirty bitmap " + bitmap);
    }
    long[] contexts = structured ? setMetaContext() : new long[] {-1, -1};
    if (bitmap != null && contexts[1] < 0) {
      throw new BadInputException(uri.describe() + " has no dirty bitmap " + bitmap
          + " (qemu-nbd exports one with -B " + bitmap + ")");
    }
    return go(structured, contexts[0], contexts[1]);
  }

  private static void tlsRequired(Reply r) throws TlsRequired {
    if (r.type() == Nbd.REP_ERR_TLS_REQD) {
      throw new TlsRequired();
    }
  }

  /**
   * The ids of base:allocation and of the dirty bitmap; -1 for one the server does not offer
   * (without base:allocation every byte counts as data).
   */
  private long[] setMetaContext() throws IOException, TlsRequired {
    byte[] name = exportName();
    byte[] query = Nbd.BASE_ALLOCATION.getBytes(StandardCharsets.UTF_8);
    String bitmapContext = bitmap == null ? null : Nbd.DIRTY_BITMAP_PREFIX + bitmap;
    byte[] query2 = bitmap == null ? new byte[0] : bitmapContext.getBytes(StandardCharsets.UTF_8);
    ByteBuffer data = ByteBuffer.allocate(4 + name.length + 4 + 4 + query.length + (bitmap == null ? 0 : 4 + query2.length));
    data.putInt(name.length).put(name).putInt(bitmap == null ? 1 : 2).putInt(query.length).put(query);
    if (bitmap != null) {
      data.putInt(query2.length).put(query2);
    }
    send(Nbd.OPT_SET_META_CONTEXT, data.flip());
    long[] context = {-1, -1};
    while (true) {
      Reply r = reply(Nbd.OPT_SET_META_CONTEXT);
      tlsRequired(r);
      if (r.type() == Nbd.REP_META_CONTEXT) {
        if (r.data().remaining() < 4) {
          throw protocol("NBD_REP_META_CONTEXT of " + r.data().remaining() + " bytes");
        }
        int id = r.data().getInt();
        String got = StandardCharsets.UTF_8.decode(r.data()).toString();
        if (got.equals(Nbd.BASE_ALLOCATION)) {
          context[0] = id & 0xffffffffL;
        } else if (got.equals(bitmapContext)) {
          context[1] = id & 0xffffffffL;
        }
      } else if (r.type() == Nbd.REP_ACK) {
        return context;
      } else {
        return new long[] {-1, -1}; // an error here costs hole detection (and a bitmap asked for)
      }
    }
  }

  private ExportInfo go(boolean structured, long context, long bitmapContext) throws IOException, TlsRequired {
    byte[] name = exportName();
    ByteBuffer data = ByteBuffer.allocate(4 + name.length + 2 + 2);
    data.putInt(name.length).put(name).putShort((short) 1).putShort((short) Nbd.INFO_BLOCK_SIZE).flip();
    send(Nbd.OPT_GO, data);
    long size = -1;
    int flags = 0;
    int min = 1;
    int preferred = 4096;
    int max = Nbd.DEFAULT_MAX_PAYLOAD;
    boolean stated = false;
    while (true) {
      Reply r = reply(Nbd.OPT_GO);
      switch (r.type()) {
        case Nbd.REP_INFO -> {
          ByteBuffer d = r.data();
          if (d.remaining() < 2) {
            throw protocol("NBD_REP_INFO of " + d.remaining() + " bytes");
          }
          int type = d.getShort() & 0xffff;
          if (type == Nbd.INFO_EXPORT) {
            expectLength("NBD_INFO_EXPORT", d, 10);
            size = d.getLong();
            flags = d.getShort() & 0xffff;
            if (size < 0) {
              throw protocol("export size 0x" + Long.toUnsignedString(size, 16) + " exceeds 2^63");
            }
          } else if (type == Nbd.INFO_BLOCK_SIZE) {
            expectLength("NBD_INFO_BLOCK_SIZE", d, 12);
            min = d.getInt();
            preferred = d.getInt();
            max = d.getInt();
            stated = true;
            checkBlockSizes(min, preferred, max);
          }
        }
        case Nbd.REP_ACK -> {
          if (size < 0) {
            throw protocol("NBD_OPT_GO acknowledged without NBD_INFO_EXPORT");
          }
          // 0xffffffff means "no limit": reads still stay at 32 MiB, the interoperable default.
          int maxRead = max < 0 ? Nbd.DEFAULT_MAX_PAYLOAD : Math.min(max, Nbd.DEFAULT_MAX_PAYLOAD);
          return new ExportInfo(size, flags, min, preferred, Math.max(maxRead, min), stated, structured, context, tls,
              bitmapContext);
        }
        case Nbd.REP_ERR_UNSUP -> {
          return exportName(structured, context, bitmapContext);
        }
        case Nbd.REP_ERR_TLS_REQD -> throw new TlsRequired();
        case Nbd.REP_ERR_UNKNOWN -> throw new BadInputException(uri.describe() + ": the server has no such export"
            + (r.message().isEmpty() ? "" : " (" + r.message() + ")"));
        default -> throw new BadInputException(uri.describe() + ": the server refused the export with "
            + Nbd.replyName(r.type()) + (r.message().isEmpty() ? "" : ": " + r.message()));
      }
    }
  }

  /** The fallback for servers without NBD_OPT_GO: the export's size and flags, no block sizes. */
  private ExportInfo exportName(boolean structured, long context, long bitmapContext) throws IOException {
    send(Nbd.OPT_EXPORT_NAME, ByteBuffer.wrap(exportName()));
    phase = "NBD_OPT_EXPORT_NAME (a server closes here when it has no such export)";
    ByteBuffer b = ByteBuffer.allocate(noZeroes ? 10 : 134);
    transport.readFully(b);
    long size = b.getLong(0);
    if (size < 0) {
      throw protocol("export size 0x" + Long.toUnsignedString(size, 16) + " exceeds 2^63");
    }
    return new ExportInfo(size, b.getShort(8) & 0xffff, 1, 4096, Nbd.DEFAULT_MAX_PAYLOAD, false, structured, context, tls,
        bitmapContext);
  }

  private void checkBlockSizes(int min, int preferred, int max) {
    boolean ok = min > 0 && Integer.bitCount(min) == 1 && min <= 65536
        && preferred > 0 && Integer.bitCount(preferred) == 1 && preferred >= min
        && (max < 0 || max >= min);
    if (!ok) {
      throw protocol("block sizes min " + min + ", preferred " + preferred + ", max " + Integer.toUnsignedString(max)
          + " break the protocol's rules");
    }
  }

  private void expectLength(String what, ByteBuffer d, int length) {
    if (d.remaining() != length) {
      throw protocol(what + " of " + (d.remaining() + 2) + " bytes, not " + (length + 2));
    }
  }

  private byte[] exportName() {
    return uri.export().getBytes(StandardCharsets.UTF_8);
  }

  private Reply option(int option, ByteBuffer data) throws IOException {
    send(option, data);
    return reply(option);
  }

  private void send(int option, ByteBuffer data) throws IOException {
    phase = Nbd.optionName(option);
    ByteBuffer b = ByteBuffer.allocate(16 + data.remaining());
    b.putLong(Nbd.IHAVEOPT).putInt(option).putInt(data.remaining()).put(data).flip();
    transport.write(b);
  }

  private Reply reply(int option) throws IOException {
    ByteBuffer h = ByteBuffer.allocate(20);
    transport.readFully(h);
    long magic = h.getLong(0);
    int replyTo = h.getInt(8);
    int type = h.getInt(12);
    int length = h.getInt(16);
    if (magic != Nbd.OPTION_REPLY_MAGIC) {
      throw protocol("option reply magic 0x" + Long.toHexString(magic) + " in answer to " + Nbd.optionName(option));
    }
    if (replyTo != option) {
      throw protocol("a reply to " + Nbd.optionName(replyTo) + " in answer to " + Nbd.optionName(option));
    }
    if (length < 0 || length > Nbd.MAX_OPTION_REPLY) {
      throw protocol(Nbd.replyName(type) + " of " + Integer.toUnsignedString(length) + " bytes to "
          + Nbd.optionName(option) + " (at most " + Nbd.MAX_OPTION_REPLY + " accepted)");
    }
    ByteBuffer data = ByteBuffer.allocate(length);
    transport.readFully(data);
    return new Reply(type, data.flip());
  }

  private RetriableException protocol(String what) {
    return new RetriableException(uri.describe() + ": protocol error during " + phase + ": " + what, null);
  }
}
