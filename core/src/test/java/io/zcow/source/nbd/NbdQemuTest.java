package io.zcow.source.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.RetriableException;
import io.zcow.testkit.NbdServer;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link NbdSource} against qemu-nbd: raw and qcow2 exports, TCP and Unix sockets, holes, limits. */
class NbdQemuTest {
  static final int MIB = NbdImages.MIB;
  static final long SIZE = NbdImages.SIZE;
  static final long[] DATA = NbdImages.DATA;
  static final int DATA_LENGTH = NbdImages.DATA_LENGTH;

  @TempDir static Path dir;
  static Path raw;
  static Path qcow2;
  static byte[] content;

  @BeforeAll
  static void images() {
    NbdImages images = NbdImages.create(dir);
    raw = images.raw();
    qcow2 = images.qcow2();
    content = images.content();
  }

  static NbdOptions fast() {
    return NbdOptions.defaults().withTimeouts(Duration.ofSeconds(5), Duration.ofSeconds(2), Duration.ofSeconds(20));
  }

  static byte[] readAll(NbdSource s, int buffer) {
    byte[] out = new byte[(int) s.size()];
    ByteBuffer b = ByteBuffer.allocateDirect(buffer);
    for (long pos = 0; pos < s.size(); pos += buffer) {
      b.clear();
      int n = s.read(b, pos);
      assertEquals(Math.min(buffer, s.size() - pos), n, "bytes read at " + pos);
      b.get(out, (int) pos, n);
    }
    return out;
  }

  @Test
  void readsARawExportOverTcpAsTheFileHoldsIt() {
    try (NbdServer server = NbdServer.qemuNbd(raw, "raw").start();
        NbdSource s = NbdSource.open(NbdUri.parse(server.uri()), fast())) {
      assertEquals(SIZE, s.size());
      assertArrayEquals(content, readAll(s, 4 * MIB));
      // off every block boundary, and across the end
      ByteBuffer b = ByteBuffer.allocate(10_000);
      assertEquals(10_000, s.read(b, DATA[0] - 4321));
      assertArrayEquals(Arrays.copyOfRange(content, (int) DATA[0] - 4321, (int) DATA[0] - 4321 + 10_000), b.array());
      b.clear();
      assertEquals(4096, s.read(b, SIZE - 4096), "a read past the end stops at the end");
      assertEquals(0, s.read(b, SIZE), "nothing at the end");
    }
  }

  @Test
  void readsAQcow2ExportOverAUnixSocket() {
    try (NbdServer server = NbdServer.qemuNbd(qcow2, "qcow2").unix(dir.resolve("q.sock")).start();
        NbdSource s = NbdSource.open(NbdUri.parse(server.uri()), fast())) {
      assertTrue(server.uri().startsWith("nbd+unix:///disk?socket="), server.uri());
      assertEquals(SIZE, s.size());
      assertArrayEquals(content, readAll(s, 3 * MIB + 512));
    }
  }

  @Test
  void onlyZeroExtentsAreHoles() {
    try (NbdServer server = NbdServer.qemuNbd(qcow2, "qcow2").start();
        NbdSource s = NbdSource.open(NbdUri.parse(server.uri()), fast())) {
      assertTrue(s.seesHoles());
      assertEquals(DATA[0], s.nextData(0));
      assertEquals(DATA[0] + DATA_LENGTH, s.nextHole(DATA[0]));
      assertEquals(DATA[0] + 5, s.nextData(DATA[0] + 5), "inside data");
      assertEquals(DATA[1], s.nextData(DATA[0] + DATA_LENGTH));
      assertEquals(SIZE - 4096, s.nextData(DATA[1] + DATA_LENGTH));
      assertEquals(SIZE, s.nextHole(SIZE - 4096), "data runs to the end");
      assertEquals(SIZE, s.nextData(SIZE));
    }
  }

  @Test
  void aReadLargerThanTheServerMaximumGoesInPieces() {
    // qemu-nbd refuses reads above 32 MiB; 40 MiB at once must still work.
    try (NbdServer server = NbdServer.qemuNbd(raw, "raw").start();
        NbdSource s = NbdSource.open(NbdUri.parse(server.uri()), fast().withRequests(2, 32 * MIB))) {
      assertEquals(32 * MIB, s.requestSize());
      ByteBuffer b = ByteBuffer.allocateDirect(40 * MIB);
      assertEquals(40 * MIB, s.read(b, 0));
      byte[] got = new byte[40 * MIB];
      b.get(got);
      assertArrayEquals(Arrays.copyOf(content, 40 * MIB), got);
    }
  }

  @Test
  void threadsReadingAtOnceEachGetTheirBytes() throws Exception {
    try (NbdServer server = NbdServer.qemuNbd(qcow2, "qcow2").start();
        NbdSource s = NbdSource.open(NbdUri.parse(server.uri()), fast())) {
      ExecutorService pool = Executors.newFixedThreadPool(4);
      try {
        List<Future<Boolean>> results = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
          results.add(pool.submit(() -> Arrays.equals(content, readAll(s, 2 * MIB))));
        }
        for (Future<Boolean> f : results) {
          assertTrue(f.get());
        }
      } finally {
        pool.shutdownNow();
      }
    }
  }

  @Test
  void anUnknownExportIsBadInput() {
    try (NbdServer server = NbdServer.qemuNbd(raw, "raw").start()) {
      String uri = "nbd://127.0.0.1:" + server.port() + "/nosuch";
      BadInputException e = assertThrows(BadInputException.class, () -> NbdSource.open(NbdUri.parse(uri), fast()));
      assertTrue(e.getMessage().contains("'nosuch'") && e.getMessage().contains("no such export"), e.getMessage());
    }
  }

  @Test
  void aRefusedConnectionIsBadInputNamingTheAddress() {
    int port = NbdServer.freePort();
    BadInputException e = assertThrows(BadInputException.class,
        () -> NbdSource.open(NbdUri.parse("nbd://127.0.0.1:" + port + "/disk"), fast()));
    assertTrue(e.getMessage().contains("127.0.0.1:" + port) && e.getMessage().contains("refused"), e.getMessage());
    BadInputException u = assertThrows(BadInputException.class,
        () -> NbdSource.open(NbdUri.parse("nbd+unix:///disk?socket=" + dir.resolve("none.sock")), fast()));
    assertTrue(u.getMessage().contains("does not exist"), u.getMessage());
  }

  @Test
  void aServerBusyWithAnotherClientTimesOutOnTheGreeting() {
    try (NbdServer server = NbdServer.qemuNbd(raw, "raw").shared(1).start();
        NbdSource first = NbdSource.open(NbdUri.parse(server.uri()), fast())) {
      long started = System.nanoTime();
      RetriableException e = assertThrows(RetriableException.class,
          () -> NbdSource.open(NbdUri.parse(server.uri()), fast()));
      assertTrue(e.getMessage().contains("no answer to the greeting") && e.getMessage().contains("-e N"), e.getMessage());
      assertTrue(System.nanoTime() - started < Duration.ofSeconds(10).toNanos(), "within the handshake timeout");
      assertEquals(SIZE, first.size());
    }
  }

  @Test
  void threadsShareTheOneConnectionAServerAllows() throws Exception {
    try (NbdServer server = NbdServer.qemuNbd(raw, "raw").shared(1).start();
        NbdSource s = NbdSource.open(NbdUri.parse(server.uri()), fast()
            .withTimeouts(Duration.ofSeconds(5), Duration.ofMillis(500), Duration.ofSeconds(20)))) {
      ExecutorService pool = Executors.newFixedThreadPool(2);
      try {
        Future<Boolean> a = pool.submit(() -> Arrays.equals(content, readAll(s, 4 * MIB)));
        Future<Boolean> b = pool.submit(() -> Arrays.equals(content, readAll(s, 4 * MIB)));
        assertTrue(a.get() && b.get());
      } finally {
        pool.shutdownNow();
      }
    }
  }

  @Test
  void aSourceLeftIdleFreesAOneClientServerForTheNext() {
    try (NbdServer server = NbdServer.qemuNbd(raw, "raw").shared(1).start();
        NbdSource probe = NbdSource.open(NbdUri.parse(server.uri()), fast())) {
      assertEquals(SIZE, probe.size());
      long started = System.nanoTime();
      try (NbdSource worker = NbdSource.open(NbdUri.parse(server.uri()),
          fast().withTimeouts(Duration.ofSeconds(5), Duration.ofSeconds(10), Duration.ofSeconds(20)))) {
        assertArrayEquals(content, readAll(worker, 4 * MIB));
      }
      long waited = System.nanoTime() - started;
      assertTrue(waited >= ConnectionPool.IDLE_CLOSE.toNanos() / 2, "the greeting came once the probe's connection closed");
    }
  }
}
