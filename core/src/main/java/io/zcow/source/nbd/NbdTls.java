package io.zcow.source.nbd;

import io.zcow.BadInputException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * X.509 credentials for NBD over TLS (NBD_OPT_STARTTLS), as PEM files like those qemu-nbd's
 * {@code tls-creds-x509} reads: the CA that signed the server's certificate, and optionally a
 * client certificate and its key (qemu-nbd asks for one unless {@code verify-peer=off}).
 *
 * @param ca PEM file of the CA certificate(s) to trust; null for the JDK's default trust store
 * @param cert PEM file of the client certificate (chain); null for none
 * @param key PEM file of the client's private key (PKCS#8, or PKCS#1 RSA); null exactly when cert is
 */
public record NbdTls(Path ca, Path cert, Path key) {
  public NbdTls {
    if ((cert == null) != (key == null)) {
      throw new BadInputException("a client certificate needs its key and a key its certificate (got "
          + (cert == null ? "a key without a certificate" : "a certificate without a key") + ")");
    }
  }

  /**
   * Builds the JSSE context: trust from {@link #ca}, the client identity from {@link #cert} and
   * {@link #key}.
   *
   * @throws BadInputException when a file is missing or is not what it should be
   */
  public SSLContext context() {
    try {
      TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      if (ca == null) {
        tmf.init((KeyStore) null);
      } else {
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        List<Certificate> cas = Pem.certificates(read(ca, "CA certificate"), ca);
        for (int i = 0; i < cas.size(); i++) {
          trust.setCertificateEntry("ca" + i, cas.get(i));
        }
        tmf.init(trust);
      }
      KeyManagerFactory kmf = null;
      if (cert != null) {
        List<Certificate> chain = Pem.certificates(read(cert, "client certificate"), cert);
        PrivateKey pk = Pem.privateKey(read(key, "client key"), key);
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        char[] none = new char[0];
        ks.setKeyEntry("client", pk, none, chain.toArray(new Certificate[0]));
        kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, none);
      }
      SSLContext ctx = SSLContext.getInstance("TLS");
      ctx.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
      return ctx;
    } catch (GeneralSecurityException | IOException e) {
      throw new BadInputException("NBD TLS credentials cannot be used: " + e.getMessage(), e);
    }
  }

  private static String read(Path file, String what) {
    try {
      return Files.readString(file);
    } catch (NoSuchFileException e) {
      throw new BadInputException(what + " " + file + " does not exist");
    } catch (IOException e) {
      throw new BadInputException(what + " " + file + " cannot be read: " + e.getMessage(), e);
    }
  }
}
