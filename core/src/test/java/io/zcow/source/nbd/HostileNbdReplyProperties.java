package io.zcow.source.nbd;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.zcow.BadInputException;
import io.zcow.RetriableException;
import io.zcow.testkit.MisbehavingNbdServer;
import java.nio.ByteBuffer;
import java.time.Duration;
import io.zcow.testkit.Tries;
import org.junit.jupiter.api.Test;

/**
 * NBD replies mutated by seed ({@link MisbehavingNbdServer#garbling}: a correct reply with bits
 * flipped, nasty lengths and cookies poked in, cut short or extended, then the connection closed).
 * The client answers each read and block-status request with data or a {@link
 * RetriableException}, within its request timeout, and allocates nothing by a length the server
 * sent. A failing seed becomes a plain test in {@link NbdBadServerTest}.
 */
class HostileNbdReplyProperties {
  private static final long SIZE = 4L << 20;

  private static NbdOptions options() {
    return NbdOptions.defaults().withTimeouts(Duration.ofSeconds(2), Duration.ofMillis(500), Duration.ofMillis(500))
        .withRequests(2, 64 << 10);
  }

  @Test
  void garbledRepliesAreDataOrRetriable() {
    Tries.run(100, g -> garbledReply(g.anyLong(), g.bool(), g.between(0, 63)));
  }

  private static void garbledReply(long seed, boolean blockStatus, int block) {
    assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
      try (MisbehavingNbdServer server = MisbehavingNbdServer.garbling(SIZE, seed, 1);
          NbdSource s = NbdSource.open(NbdUri.parse(server.uri()), options())) {
        try {
          if (blockStatus) {
            s.nextData(block * (64L << 10));
          } else {
            s.read(ByteBuffer.allocate(64 << 10), block * (64L << 10));
          }
        } catch (RetriableException expected) {
          // the typed answer to a broken server
        }
      }
    });
  }

  @Test
  void garbledHandshakesOpenOrAreTypedErrors() {
    Tries.run(100, g -> garbledHandshake(g.anyLong()));
  }

  private static void garbledHandshake(long seed) {
    assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
      try (MisbehavingNbdServer server = MisbehavingNbdServer.garbling(SIZE, seed, 0)) {
        try (NbdSource s = NbdSource.open(NbdUri.parse(server.uri()), options())) {
          s.read(ByteBuffer.allocate(4096), 0);
        } catch (RetriableException | BadInputException expected) {
          // NbdSource.open documents both for a server that breaks the handshake
        }
      }
    });
  }
}
