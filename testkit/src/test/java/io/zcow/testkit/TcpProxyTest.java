package io.zcow.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** {@link TcpProxy} against a real echo server on loopback. */
class TcpProxyTest {
  private ServerSocket echo;
  private Thread echoThread;

  @BeforeEach
  void startEcho() throws IOException {
    echo = new ServerSocket(0, 16, InetAddress.getLoopbackAddress());
    echoThread = new Thread(() -> {
      while (!echo.isClosed()) {
        try {
          Socket s = echo.accept();
          Thread t = new Thread(() -> {
            try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
              for (int b; (b = in.read()) >= 0; ) {
                out.write(b);
              }
            } catch (IOException ignored) {
              // the connection ended
            }
          });
          t.setDaemon(true);
          t.start();
        } catch (IOException e) {
          return;
        }
      }
    });
    echoThread.setDaemon(true);
    echoThread.start();
  }

  @AfterEach
  void stopEcho() throws IOException {
    echo.close();
  }

  private Socket connect(TcpProxy p) throws IOException {
    Socket s = new Socket(InetAddress.getLoopbackAddress(), p.port());
    s.setSoTimeout(2000);
    return s;
  }

  private static int roundTrip(Socket s, int b) throws IOException {
    s.getOutputStream().write(b);
    s.getOutputStream().flush();
    return s.getInputStream().read();
  }

  @Test
  void forwardsBothWays() throws IOException {
    try (TcpProxy p = TcpProxy.start("127.0.0.1", echo.getLocalPort()); Socket s = connect(p)) {
      assertEquals(42, roundTrip(s, 42));
      assertEquals(7, roundTrip(s, 7));
      assertEquals(4, p.bytesForwarded());
      assertEquals(1, p.accepted());
    }
  }

  @Test
  void cutDropsLiveConnectionsAndBlackholesNewOnesUntilHealed() throws IOException {
    try (TcpProxy p = TcpProxy.start("127.0.0.1", echo.getLocalPort())) {
      Socket before = connect(p);
      assertEquals(1, roundTrip(before, 1));
      p.cut(TcpProxy.Mode.BLACKHOLE);
      assertTrue(p.isCut());
      assertTrue(p.dropped() >= 1, "the live connection was dropped");
      // The dropped connection ends: EOF or a reset, never an echo.
      int r;
      try {
        r = roundTrip(before, 2);
      } catch (IOException reset) {
        r = -1;
      }
      assertEquals(-1, r, "nothing comes back over a dropped connection");
      before.close();

      Socket during = connect(p); // accepted, then silence
      during.getOutputStream().write(3);
      assertThrows(SocketTimeoutException.class, () -> during.getInputStream().read());
      assertEquals(1, p.arrivedWhileCut());
      long forwarded = p.bytesForwarded();

      p.heal();
      assertEquals(-1, readOrEof(during), "a connection held in the blackhole is closed at heal");
      during.close();
      try (Socket after = connect(p)) {
        assertEquals(4, roundTrip(after, 4));
      }
      assertEquals(forwarded + 2, p.bytesForwarded(), "nothing was forwarded while cut");
    }
  }

  @Test
  void refuseResetsNewConnections() throws IOException {
    try (TcpProxy p = TcpProxy.start("127.0.0.1", echo.getLocalPort())) {
      p.cut(TcpProxy.Mode.REFUSE);
      try (Socket s = connect(p)) {
        assertEquals(-1, readOrEof(s), "a refused connection is closed at once");
      }
      p.heal();
      try (Socket s = connect(p)) {
        assertEquals(9, roundTrip(s, 9));
      }
    }
  }

  @Test
  void aTargetThatIsNotListeningClosesTheClient() throws IOException {
    int port;
    try (ServerSocket free = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = free.getLocalPort();
    }
    try (TcpProxy p = TcpProxy.start("127.0.0.1", port); Socket s = connect(p)) {
      assertEquals(-1, readOrEof(s));
    }
  }

  @Test
  void rejectsABadTargetPort() {
    assertThrows(IllegalArgumentException.class, () -> TcpProxy.start("127.0.0.1", 0));
  }

  private static int readOrEof(Socket s) throws IOException {
    try {
      return s.getInputStream().read();
    } catch (SocketTimeoutException e) {
      throw e;
    } catch (IOException reset) {
      return -1;
    }
  }
}
