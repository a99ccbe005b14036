package io.zcow.testkit;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A tiny NBD server on 127.0.0.1 that negotiates correctly (fixed newstyle, structured replies,
 * {@code base:allocation}, one export named {@code disk}) and then breaks the protocol the way
 * {@link Fault} says, for the first {@code faultyRequests} reads or block-status requests; after
 * those it answers correctly. The export's byte at offset i is {@link #byteAt(long)}.
 *
 * <p>For tests only: one thread per connection, no TLS, no writes.
 */
public final class MisbehavingNbdServer implements AutoCloseable {
  /** How the server breaks the protocol. */
  public enum Fault {
    /** None: a correct server. */
    NONE,
    /** Accepts connections and never says a word. */
    NO_GREETING,
    /** Greets with something that is not NBD. */
    NOT_NBD,
    /** Answers every option with NBD_REP_ERR_TLS_REQD. */
    TLS_REQUIRED,
    /** Answers a read with a cookie that no request has. */
    WRONG_COOKIE,
    /** Ends a read's reply (DONE) after half of its bytes. */
    SHORT_REPLY,
    /** Sends data for bytes outside the request. */
    DATA_OUTSIDE_REQUEST,
    /** Closes the connection halfway through a read's data. */
    CLOSE_MID_READ,
    /** Never answers a read. */
    SILENT,
    /** Fails a read with an error chunk (EIO at its offset). */
    ERROR_CHUNK,
    /** Announces a block-status chunk of more than 2^20 extents. */
    OVERSIZED_EXTENTS,
    /**
     * Answers with a correct reply mutated by {@link HostileBytes#mutate} under the server's seed
     * (and the request's number), then closes the connection, so a client never waits for bytes
     * the mutation removed. See {@link #garbling}.
     */
    GARBLED,
    /**
     * Negotiates with the greeting and every option reply mutated as {@link #GARBLED} says; a
     * reply whose length the mutation changed is the last thing sent before the connection closes.
     */
    GARBLED_HANDSHAKE
  }

  private static final long NBDMAGIC = 0x4e42444d41474943L;
  private static final long IHAVEOPT = 0x49484156454F5054L;
  private static final long OPTION_REPLY = 0x3e889045565a9L;

  private final long size;
  private final Fault fault;
  private final AtomicInteger faultsLeft;
  private final ServerSocket server;
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();
  private final Thread acceptor;
  private final long seed;
  private final AtomicInteger requests = new AtomicInteger();

  private MisbehavingNbdServer(long size, Fault fault, int faultyRequests, long seed) throws IOException {
    this.seed = seed;
    this.size = size;
    this.fault = fault;
    this.faultsLeft = new AtomicInteger(faultyRequests);
    this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    this.acceptor = new Thread(this::accept, "misbehaving-nbd-accept");
    this.acceptor.setDaemon(true);
    this.acceptor.start();
  }

  /** Serves an export of {@code size} bytes, misbehaving on the first {@code faultyRequests} requests. */
  public static MisbehavingNbdServer start(long size, Fault fault, int faultyRequests) {
    try {
      return new MisbehavingNbdServer(size, fault, faultyRequests, 0);
    } catch (IOException e) {
      throw new IllegalStateException("cannot listen: " + e.getMessage(), e);
    }
  }

  /**
   * A {@link Fault#GARBLED} server: its first {@code faultyRequests} replies are mutated as {@code
   * seed} says; with {@code faultyRequests} 0 or less a {@link Fault#GARBLED_HANDSHAKE} server.
   */
  public static MisbehavingNbdServer garbling(long size, long seed, int faultyRequests) {
    try {
      return new MisbehavingNbdServer(size, fault(faultyRequests), Math.max(faultyRequests, 0), seed);
    } catch (IOException e) {
      throw new IllegalStateException("cannot listen: " + e.getMessage(), e);
    }
  }

  private static Fault fault(int faultyRequests) {
    return faultyRequests > 0 ? Fault.GARBLED : Fault.GARBLED_HANDSHAKE;
  }

  /** The content of the export at {@code offset}. */
  public static byte byteAt(long offset) {
    return (byte) (offset * 31 + (offset >>> 12) + 7);
  }

  public String uri() {
    return "nbd://127.0.0.1:" + server.getLocalPort() + "/disk";
  }

  public int port() {
    return server.getLocalPort();
  }

  private void accept() {
    while (!server.isClosed()) {
      try {
        Socket s = server.accept();
        sockets.add(s);
        Thread t = new Thread(() -> serve(s), "misbehaving-nbd-conn");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        return;
      }
    }
  }

  private void serve(Socket s) {
    try (s) {
      DataInputStream in = new DataInputStream(s.getInputStream());
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      if (fault == Fault.NO_GREETING) {
        in.read(); // until the client gives up
        return;
      }
      if (fault == Fault.NOT_NBD) {
        out.write("HTTP/1.1 400 Bad Request\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        out.flush();
        in.read();
        return;
      }
      if (!send(out, java.nio.ByteBuffer.allocate(18).putLong(NBDMAGIC).putLong(IHAVEOPT)
          .putShort((short) (1 | 2)).array())) { // fixed newstyle, no zeroes
        return;
      }
      in.readInt(); // client flags
      if (!negotiate(in, out)) {
        return;
      }
      transmit(in, out, s);
    } catch (IOException e) {
      // the client went away: nothing to do
    }
  }

  private boolean negotiate(DataInputStream in, DataOutputStream out) throws IOException {
    while (true) {
      if (in.readLong() != IHAVEOPT) {
        return false;
      }
      int option = in.readInt();
      byte[] data = new byte[in.readInt()];
      in.readFully(data);
      if (fault == Fault.TLS_REQUIRED && option != 2) {
        optionReply(out, option, 0x80000005, new byte[0]);
        continue;
      }
      switch (option) {
        case 2 -> {
          optionReply(out, option, 1, new byte[0]);
          return false;
        }
        case 8 -> optionReply(out, option, 1, new byte[0]);
        case 10 -> {
          byte[] name = "base:allocation".getBytes(StandardCharsets.UTF_8);
          optionReply(out, option, 4, java.nio.ByteBuffer.allocate(4 + name.length).putInt(1).put(name).array());
          optionReply(out, option, 1, new byte[0]);
        }
        case 7 -> {
          int nameLength = java.nio.ByteBuffer.wrap(data).getInt();
          String name = new String(data, 4, nameLength, StandardCharsets.UTF_8);
          if (!name.equals("disk")) {
            optionReply(out, option, 0x80000006, "no export named that".getBytes(StandardCharsets.UTF_8));
            continue;
          }
          optionReply(out, option, 3, java.nio.ByteBuffer.allocate(12).putShort((short) 0).putLong(size)
              .putShort((short) (1 | 2 | 256)).array());
          optionReply(out, option, 3, java.nio.ByteBuffer.allocate(14).putShort((short) 3).putInt(1).putInt(4096)
              .putInt(1 << 20).array());
          optionReply(out, option, 1, new byte[0]);
          return true;
        }
        default -> optionReply(out, option, 0x80000001, new byte[0]);
      }
    }
  }

  private void optionReply(DataOutputStream out, int option, int type, byte[] data) throws IOException {
    byte[] reply = java.nio.ByteBuffer.allocate(20 + data.length).putLong(OPTION_REPLY).putInt(option).putInt(type)
        .putInt(data.length).put(data).array();
    if (!send(out, reply)) {
      throw new IOException("garbled reply sent; connection closed");
    }
  }

  /**
   * Sends {@code bytes}, mutated under {@link Fault#GARBLED_HANDSHAKE}; false when the mutation
   * changed their length: the caller closes the connection, so the client never waits for more.
   */
  private boolean send(DataOutputStream out, byte[] bytes) throws IOException {
    byte[] b = fault == Fault.GARBLED_HANDSHAKE ? HostileBytes.mutate(bytes, seed * 31 + requests.incrementAndGet()) : bytes;
    out.write(b);
    out.flush();
    return b.length == bytes.length;
  }

  private void transmit(DataInputStream in, DataOutputStream out, Socket s) throws IOException {
    while (true) {
      in.readInt(); // magic
      in.readShort(); // flags
      int type = in.readShort();
      long cookie = in.readLong();
      long offset = in.readLong();
      long length = in.readInt() & 0xffffffffL;
      if (type == 2) {
        return;
      }
      Fault f = faultsLeft.getAndDecrement() > 0 ? fault : Fault.NONE;
      if (f == Fault.GARBLED) {
        java.io.ByteArrayOutputStream reply = new java.io.ByteArrayOutputStream();
        DataOutputStream r = new DataOutputStream(reply);
        if (type == 7) {
          blockStatus(r, Fault.NONE, cookie, length);
        } else {
          read(r, Fault.NONE, cookie, offset, (int) length, s);
        }
        out.write(HostileBytes.mutate(reply.toByteArray(), seed * 31 + requests.incrementAndGet()));
        out.flush();
        s.shutdownOutput();
        return;
      }
      if (type == 7) {
        blockStatus(out, f, cookie, length);
      } else if (type == 0) {
        if (!read(out, f, cookie, offset, (int) length, s)) {
          return;
        }
      } else {
        chunkHeader(out, 1, 0x8001, cookie, 6);
        out.writeInt(22);
        out.writeShort(0);
      }
      out.flush();
    }
  }

  private boolean read(DataOutputStream out, Fault f, long cookie, long offset, int length, Socket s)
      throws IOException {
    switch (f) {
      case SILENT -> {
        return true;
      }
      case WRONG_COOKIE -> cookie += 1000;
      case ERROR_CHUNK -> {
        byte[] msg = "disk on fire".getBytes(StandardCharsets.UTF_8);
        chunkHeader(out, 1, 0x8002, cookie, 14 + msg.length);
        out.writeInt(5);
        out.writeShort(msg.length);
        out.write(msg);
        out.writeLong(offset);
        return true;
      }
      case SHORT_REPLY -> length /= 2;
      case DATA_OUTSIDE_REQUEST -> offset += length;
      case CLOSE_MID_READ -> {
        chunkHeader(out, 1, 1, cookie, 8 + length);
        out.writeLong(offset);
        out.write(content(offset, length / 2));
        out.flush();
        s.shutdownOutput();
        return false;
      }
      default -> {
        // the fault is elsewhere
      }
    }
    chunkHeader(out, 1, 1, cookie, 8 + length);
    out.writeLong(offset);
    out.write(content(offset, length));
    return true;
  }

  private void blockStatus(DataOutputStream out, Fault f, long cookie, long length) throws IOException {
    if (f == Fault.OVERSIZED_EXTENTS) {
      chunkHeader(out, 1, 5, cookie, 4 + 8L * ((1 << 20) + 1));
      out.writeInt(1);
      return;
    }
    chunkHeader(out, 1, 5, cookie, 12);
    out.writeInt(1);
    out.writeInt((int) length);
    out.writeInt(0);
  }

  private static void chunkHeader(DataOutputStream out, int flags, int type, long cookie, long length)
      throws IOException {
    out.writeInt(0x668e33ef);
    out.writeShort(flags);
    out.writeShort(type);
    out.writeLong(cookie);
    out.writeInt((int) length);
  }

  private static byte[] content(long offset, int length) {
    byte[] b = new byte[length];
    for (int i = 0; i < length; i++) {
      b[i] = byteAt(offset + i);
    }
    return b;
  }

  @Override
  public void close() {
    try {
      server.close();
    } catch (IOException ignored) {
      // a test server: nothing to keep
    }
    for (Socket s : sockets) {
      try {
        s.close();
      } catch (IOException ignored) {
        // already gone
      }
    }
  }
}
