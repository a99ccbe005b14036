package io.zcow.testkit;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A TCP forwarder on loopback for partition tests: every connection accepted on {@link #port()} is
 * piped to the target address, until {@link #cut(Mode)} drops every live connection and treats new
 * ones by the mode — {@link Mode#BLACKHOLE} accepts them and never answers (as a network that drops
 * packets: clients wait for their own timeouts), {@link Mode#REFUSE} resets them at once (as a
 * firewall that rejects) — and {@link #heal()} forwards again (blackholed connections are closed
 * then, so their clients reconnect).
 *
 * <p>A client that learns other addresses from the server (a Kafka client learns the brokers from
 * metadata) goes around the proxy unless the server advertises the proxy's address.
 *
 * <p>Thread safe. One accept thread and two pump threads per connection, all daemons, ended by
 * {@link #close()}.
 */
public final class TcpProxy implements Closeable {
  /** How new connections are treated while cut. */
  public enum Mode { BLACKHOLE, REFUSE }

  private final ServerSocket server;
  private final InetSocketAddress target;
  private final AtomicReference<Mode> cut = new AtomicReference<>();
  private final Set<Socket> live = ConcurrentHashMap.newKeySet();
  private final Set<Socket> held = ConcurrentHashMap.newKeySet();
  private final AtomicLong accepted = new AtomicLong();
  private final AtomicLong refusedOrHeld = new AtomicLong();
  private final AtomicLong dropped = new AtomicLong();
  private final AtomicLong bytes = new AtomicLong();
  private final Thread acceptor;
  private volatile boolean closed;

  private TcpProxy(ServerSocket server, InetSocketAddress target) {
    this.server = server;
    this.target = target;
    this.acceptor = new Thread(this::acceptLoop, "tcp-proxy-" + server.getLocalPort() + "-to-" + target.getPort());
    acceptor.setDaemon(true);
  }

  /** A proxy on a free loopback port forwarding to {@code targetHost:targetPort} (which need not listen yet). */
  public static TcpProxy start(String targetHost, int targetPort) {
    return start(0, targetHost, targetPort);
  }

  /**
   * A proxy on loopback port {@code listenPort} (0: a free one) forwarding to {@code
   * targetHost:targetPort}; each connection is made to the target when a client connects.
   */
  public static TcpProxy start(int listenPort, String targetHost, int targetPort) {
    if (targetPort <= 0 || targetPort > 65535) {
      throw new IllegalArgumentException("targetPort must be 1..65535: " + targetPort);
    }
    try {
      ServerSocket s = new ServerSocket();
      s.setReuseAddress(true);
      s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), listenPort), 64);
      TcpProxy p = new TcpProxy(s, new InetSocketAddress(targetHost, targetPort));
      p.acceptor.start();
      return p;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot listen on loopback port " + listenPort, e);
    }
  }

  /** The port clients connect to. */
  public int port() {
    return server.getLocalPort();
  }

  /** {@code 127.0.0.1:PORT} (the loopback address the proxy listens on). */
  public String address() {
    return server.getInetAddress().getHostAddress() + ":" + port();
  }

  /**
   * Partitions: closes every live connection (both sides, at once) and treats the connections
   * that arrive until {@link #heal()} by {@code mode}. Cutting again changes the mode only.
   */
  public void cut(Mode mode) {
    if (mode == null) {
      throw new IllegalArgumentException("mode must be given");
    }
    cut.set(mode);
    for (Socket s : live) {
      dropped.incrementAndGet();
      closeQuietly(s);
    }
  }

  /** Forwards again; connections held while blackholed are closed so their clients reconnect. */
  public void heal() {
    cut.set(null);
    for (Socket s : held) {
      closeQuietly(s);
    }
    held.clear();
  }

  public boolean isCut() {
    return cut.get() != null;
  }

  /** Connections accepted so far (forwarded, held or refused). */
  public long accepted() {
    return accepted.get();
  }

  /** Connections that arrived while cut (held in the blackhole or refused). */
  public long arrivedWhileCut() {
    return refusedOrHeld.get();
  }

  /** Live connections (each counted from both its ends) closed by {@link #cut(Mode)}. */
  public long dropped() {
    return dropped.get();
  }

  /** Bytes forwarded so far, both directions together. */
  public long bytesForwarded() {
    return bytes.get();
  }

  private void acceptLoop() {
    while (!closed) {
      Socket client;
      try {
        client = server.accept();
      } catch (IOException e) {
        if (closed) {
          return;
        }
        continue;
      }
      accepted.incrementAndGet();
      Mode mode = cut.get();
      if (mode != null) {
        refusedOrHeld.incrementAndGet();
        if (mode == Mode.REFUSE) {
          reset(client);
        } else {
          held.add(client);
          if (!isCut()) { // healed meanwhile
            held.remove(client);
            closeQuietly(client);
          }
        }
        continue;
      }
      Thread t = new Thread(() -> connect(client), "tcp-proxy-conn-" + port());
      t.setDaemon(true);
      t.start();
    }
  }

  private void connect(Socket client) {
    Socket upstream = new Socket();
    try {
      upstream.setTcpNoDelay(true);
      client.setTcpNoDelay(true);
      upstream.connect(target, 10_000);
    } catch (IOException e) {
      reset(client);
      closeQuietly(upstream);
      return;
    }
    live.add(client);
    live.add(upstream);
    if (isCut()) { // cut while connecting
      live.remove(client);
      live.remove(upstream);
      closeQuietly(client);
      closeQuietly(upstream);
      return;
    }
    Thread back = new Thread(() -> pump(upstream, client), "tcp-proxy-pump-" + port());
    back.setDaemon(true);
    back.start();
    pump(client, upstream);
  }

  private void pump(Socket from, Socket to) {
    byte[] buf = new byte[64 << 10];
    try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
      for (int n; (n = in.read(buf)) >= 0; ) {
        bytes.addAndGet(n); // counted before it is sent: a reader of the answer sees it counted
        out.write(buf, 0, n);
      }
    } catch (IOException e) {
      // a cut, a reset by either side: the connection ends
    } finally {
      live.remove(from);
      live.remove(to);
      closeQuietly(from);
      closeQuietly(to);
    }
  }

  private static void reset(Socket s) {
    try {
      s.setSoLinger(true, 0); // RST, as a refused connection
    } catch (SocketException ignored) {
      // closed already
    }
    closeQuietly(s);
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // nothing to do
    }
  }

  /** Stops listening and closes every connection. */
  @Override
  public void close() {
    closed = true;
    try {
      server.close();
    } catch (IOException ignored) {
      // nothing to do
    }
    cut(Mode.REFUSE);
    heal();
  }

  @Override
  public String toString() {
    return "TcpProxy[" + address() + " -> " + target.getHostString() + ":" + target.getPort()
        + (isCut() ? ", cut " + cut.get() : "") + "]";
  }
}
