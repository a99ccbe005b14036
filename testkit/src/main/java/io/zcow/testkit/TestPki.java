package io.zcow.testkit;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A throwaway X.509 PKI made with openssl for TLS tests: a CA, a server certificate for
 * 127.0.0.1 and localhost, and a client certificate, laid out as qemu's {@code tls-creds-x509}
 * reads a directory (ca-cert.pem, server-cert.pem, server-key.pem) plus client-cert.pem and
 * client-key.pem.
 */
public final class TestPki {
  private TestPki() {}

  /** Makes the files in {@code dir}; returns dir. */
  public static Path create(Path dir) {
    Path openssl = Tools.require("openssl", "openssl");
    try {
      Files.createDirectories(dir);
      Files.writeString(dir.resolve("server.ext"),
          "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n");
      Files.writeString(dir.resolve("client.ext"),
          "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n");
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    String o = openssl.toString();
    run(dir, o, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca-cert.pem",
        "-days", "2", "-subj", "/CN=zcow test CA");
    for (String who : List.of("server", "client")) {
      run(dir, o, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", who + "-key.pem", "-out", who + ".csr",
          "-subj", "/CN=" + (who.equals("server") ? "localhost" : "zcow-client"));
      run(dir, o, "x509", "-req", "-in", who + ".csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem",
          "-CAcreateserial", "-out", who + "-cert.pem", "-days", "2", "-extfile", who + ".ext");
    }
    return dir;
  }

  private static void run(Path dir, String... cmd) {
    List<String> full = new java.util.ArrayList<>(List.of("sh", "-c", "cd \"$0\" && exec \"$@\"", dir.toString()));
    full.addAll(List.of(cmd));
    Tools.Result r = Tools.run(full, Duration.ofMinutes(1));
    if (r.exitCode() != 0) {
      throw new IllegalStateException(r.describe());
    }
  }
}
