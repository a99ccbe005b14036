package io.zcow.source.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.testkit.NbdServer;
import io.zcow.testkit.TestPki;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** TLS through NBD_OPT_STARTTLS against qemu-nbd, and nbdkit as a second, independent server. */
class NbdTlsAndNbdkitTest {
  @TempDir static Path dir;
  static Path pki;
  static NbdImages images;

  @BeforeAll
  static void setUp() {
    images = NbdImages.create(dir);
    pki = TestPki.create(dir.resolve("pki"));
  }

  static NbdTls clientCreds() {
    return new NbdTls(pki.resolve("ca-cert.pem"), pki.resolve("client-cert.pem"), pki.resolve("client-key.pem"));
  }

  @Test
  void readsOverTlsWithAClientCertificate() {
    try (NbdServer server = NbdServer.qemuNbd(images.qcow2(), "qcow2").tls(pki, true).start();
        NbdSource s = NbdSource.open(NbdUri.parse(server.uri()), NbdQemuTest.fast().withTls(clientCreds()))) {
      assertTrue(server.uri().startsWith("nbds://"), server.uri());
      assertArrayEquals(images.content(), NbdQemuTest.readAll(s, 4 << 20));
      assertTrue(s.seesHoles(), "structured replies and base:allocation negotiated again after STARTTLS");
      assertEquals(NbdImages.DATA[0], s.nextData(0));
    }
  }

  @Test
  void aServerDemandingTlsIsRefusedCleanlyWithoutCredentials() {
    try (NbdServer server = NbdServer.qemuNbd(images.raw(), "raw").tls(pki, false).start()) {
      String plain = "nbd://127.0.0.1:" + server.port() + "/disk";
      BadInputException e = assertThrows(BadInputException.class,
          () -> NbdSource.open(NbdUri.parse(plain), NbdQemuTest.fast()));
      assertTrue(e.getMessage().contains("requires TLS") && e.getMessage().contains("nbds://"), e.getMessage());
      // with a CA only (the server checks no client certificate here), nbd:// upgrades when told to
      try (NbdSource s = NbdSource.open(NbdUri.parse(plain),
          NbdQemuTest.fast().withTls(new NbdTls(pki.resolve("ca-cert.pem"), null, null)))) {
        assertEquals(NbdImages.SIZE, s.size());
      }
    }
  }

  @Test
  void aCertificateFromAnotherCaIsRefused() {
    Path other = TestPki.create(dir.resolve("other"));
    try (NbdServer server = NbdServer.qemuNbd(images.raw(), "raw").tls(pki, false).start()) {
      BadInputException e = assertThrows(BadInputException.class, () -> NbdSource.open(NbdUri.parse(server.uri()),
          NbdQemuTest.fast().withTls(new NbdTls(other.resolve("ca-cert.pem"), null, null))));
      assertTrue(e.getMessage().startsWith("TLS with NBD export 'disk' at 127.0.0.1:"), e.getMessage());
    }
  }

  @Test
  void readsAnNbdkitExportThatStatesNoBlockSizes() {
    try (NbdServer server = NbdServer.nbdkit(images.raw()).unix(dir.resolve("k.sock")).start();
        NbdSource s = NbdSource.open(NbdUri.parse(server.uri()), NbdQemuTest.fast())) {
      assertEquals(NbdImages.SIZE, s.size());
      assertEquals(1 << 20, s.requestSize(), "the default request size, within the 32 MiB assumed");
      assertArrayEquals(images.content(), NbdQemuTest.readAll(s, 4 << 20));
      // Whatever nbdkit says of allocation, no data may fall in a reported hole.
      long pos = 0;
      while (pos < s.size()) {
        long data = s.nextData(pos);
        for (long i = pos; i < data; i++) {
          if (images.content()[(int) i] != 0) {
            throw new AssertionError("byte at " + i + " is data inside a hole [" + pos + ", " + data + ")");
          }
        }
        if (data >= s.size()) {
          break;
        }
        pos = Math.max(s.nextHole(data), data + 1);
      }
    }
  }
}
