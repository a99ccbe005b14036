package io.zcow.source.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.RetriableException;
import io.zcow.testkit.MisbehavingNbdServer;
import io.zcow.testkit.MisbehavingNbdServer.Fault;
import java.nio.ByteBuffer;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Servers that break the protocol: each is one clear error naming the server, and the source recovers. */
class NbdBadServerTest {
  private static final long SIZE = 8L << 20;

  private static NbdOptions options() {
    return NbdOptions.defaults().withTimeouts(Duration.ofSeconds(2), Duration.ofMillis(700), Duration.ofMillis(700))
        .withRequests(4, 256 << 10);
  }

  /** The first read fails as {@code expected} (a regular expression) says; the next one, over a new connection, is right. */
  private static void firstReadFailsThenRecovers(Fault fault, String expected) {
    try (MisbehavingNbdServer server = MisbehavingNbdServer.start(SIZE, fault, 1);
        NbdSource s = NbdSource.open(NbdUri.parse(server.uri()), options())) {
      ByteBuffer b = ByteBuffer.allocate(1 << 20);
      RetriableException e = assertThrows(RetriableException.class, () -> s.read(b, 4096));
      assertTrue(e.getMessage().matches(".*(" + expected + ").*"), e.getMessage());
      assertTrue(e.getMessage().contains("127.0.0.1:" + server.port()), "names the server: " + e.getMessage());
      assertFalse(e.getMessage().contains("\n"), e.getMessage());
      assertEquals(1 << 20, s.read(b.clear(), 4096));
      for (int i = 0; i < b.limit(); i++) {
        assertEquals(MisbehavingNbdServer.byteAt(4096 + i), b.get(i), "byte at " + (4096 + i));
      }
    }
  }

  @Test
  void aReplyWithAnUnknownCookieBreaksTheConnection() {
    firstReadFailsThenRecovers(Fault.WRONG_COOKIE, "cookie");
  }

  @Test
  void aReplyShorterThanTheRequestFailsTheRead() {
    firstReadFailsThenRecovers(Fault.SHORT_REPLY, "covered 131072 bytes, not 262144");
  }

  @Test
  void dataOutsideTheRequestIsAProtocolError() {
    firstReadFailsThenRecovers(Fault.DATA_OUTSIDE_REQUEST, "lies outside the read");
  }

  @Test
  void aServerClosingMidReadFailsTheRead() {
    // EOF, or a reset when the server drops requests it had not read yet (seen by the reader, or
    // by the send of the next request, which the reader thread makes as a reply lands)
    firstReadFailsThenRecovers(Fault.CLOSE_MID_READ,
        "the server closed the connection|connection lost: .*Connection reset|sending the read .* failed: Connection reset");
  }

  @Test
  void anOverdueReplyTimesOut() {
    firstReadFailsThenRecovers(Fault.SILENT, "no reply to the read");
  }

  @Test
  void anErrorChunkFailsTheReadWithTheServersWords() {
    firstReadFailsThenRecovers(Fault.ERROR_CHUNK, "EIO at 0x1000: disk on fire");
  }

  @Test
  void anOversizedExtentListIsRefused() {
    try (MisbehavingNbdServer server = MisbehavingNbdServer.start(SIZE, Fault.OVERSIZED_EXTENTS, 1);
        NbdSource s = NbdSource.open(NbdUri.parse(server.uri()), options())) {
      RetriableException e = assertThrows(RetriableException.class, () -> s.nextData(0));
      assertTrue(e.getMessage().contains("extent list of 1048577 extents"), e.getMessage());
      assertEquals(0, s.nextData(0), "the next answer is sound again");
      assertEquals(SIZE, s.nextHole(0));
    }
  }

  @Test
  void aServerThatNeverGreetsTimesOut() {
    try (MisbehavingNbdServer server = MisbehavingNbdServer.start(SIZE, Fault.NO_GREETING, 0)) {
      RetriableException e = assertThrows(RetriableException.class, () -> NbdSource.open(NbdUri.parse(server.uri()), options()));
      assertTrue(e.getMessage().contains("no answer to the greeting within 700 ms"), e.getMessage());
    }
  }

  @Test
  void somethingThatIsNotNbdIsNamedSo() {
    try (MisbehavingNbdServer server = MisbehavingNbdServer.start(SIZE, Fault.NOT_NBD, 0)) {
      RetriableException e = assertThrows(RetriableException.class, () -> NbdSource.open(NbdUri.parse(server.uri()), options()));
      assertTrue(e.getMessage().contains("not an NBD server?"), e.getMessage());
    }
  }

  @Test
  void tlsDemandedWithoutCredentialsIsBadInput() {
    try (MisbehavingNbdServer server = MisbehavingNbdServer.start(SIZE, Fault.TLS_REQUIRED, 0)) {
      BadInputException e = assertThrows(BadInputException.class, () -> NbdSource.open(NbdUri.parse(server.uri()), options()));
      assertTrue(e.getMessage().contains("requires TLS"), e.getMessage());
    }
  }

  @Test
  void anUnknownExportIsBadInputWithTheServersWords() {
    try (MisbehavingNbdServer server = MisbehavingNbdServer.start(SIZE, Fault.NONE, 0)) {
      BadInputException e = assertThrows(BadInputException.class,
          () -> NbdSource.open(NbdUri.parse("nbd://127.0.0.1:" + server.port() + "/other"), options()));
      assertTrue(e.getMessage().contains("no such export (no export named that)"), e.getMessage());
    }
  }
}
