package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.source.nbd.NbdOptions;
import io.zcow.source.nbd.NbdTls;
import java.nio.file.Path;
import java.time.Duration;
import picocli.CommandLine.Option;

/** The options of commands that may read an NBD export (SOURCE as nbd://, nbds:// or nbd+unix://). */
final class NbdCliOptions {
  @Option(names = "--nbd-tls-ca", paramLabel = "FILE", description = "PEM file of the CA that signed the NBD server's certificate (nbds://; default: the JDK's trusted CAs).")
  Path ca;

  @Option(names = "--nbd-tls-cert", paramLabel = "FILE", description = "PEM file of this client's certificate, for NBD servers that check clients (qemu-nbd's verify-peer).")
  Path cert;

  @Option(names = "--nbd-tls-key", paramLabel = "FILE", description = "PEM file of the key of --nbd-tls-cert (PKCS#8, or PKCS#1 RSA; unencrypted).")
  Path key;

  @Option(names = "--nbd-timeout", paramLabel = "SECONDS", description = "Give up on an NBD server that does not connect, greet or answer a request within this (default: ${DEFAULT-VALUE}).")
  int timeout = 30;

  /** The typed options; every bad value is a BadInputException naming its option. */
  NbdOptions options() {
    if (timeout < 1 || timeout > 3600) {
      throw new BadInputException("--nbd-timeout must be 1 to 3600 seconds: " + timeout);
    }
    if ((cert == null) != (key == null)) {
      throw new BadInputException("--nbd-tls-cert and --nbd-tls-key go together");
    }
    Duration t = Duration.ofSeconds(timeout);
    NbdOptions o = NbdOptions.defaults().withTimeouts(t, t, t);
    return ca == null && cert == null ? o : o.withTls(new NbdTls(ca, cert, key));
  }
}
