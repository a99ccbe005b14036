package org.apache.kafka.test;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.common.config.SslConfigs;
import org.apache.kafka.common.config.types.Password;
import org.apache.kafka.common.network.ConnectionMode;

/**
 * SSL settings for the test kit's brokers and clients (see {@link TestUtils} for why this class
 * lives here). The test kit makes one server configuration per cluster, whether or not a listener
 * uses SSL, and client configurations that trust it. The key pair is real: a self-signed
 * certificate for {@code localhost} made once per JVM by the JDK's {@code keytool}, copied into
 * each store file the test kit asks for, in PKCS12.
 */
public final class TestSslUtils {
  private static final String PASSWORD = "zcow-testkit";
  private static byte[] keyStore;
  private static byte[] trustStore;

  private TestSslUtils() {}

  /** Builds the SSL settings of one side of a connection. */
  public static final class SslConfigsBuilder {
    private final ConnectionMode mode;
    private File trustStoreFile;
    private boolean createTrustStore;

    public SslConfigsBuilder(ConnectionMode mode) {
      this.mode = mode;
    }

    /** Writes a new trust store (trusting this JVM's certificate) to the file. */
    public SslConfigsBuilder createNewTrustStore(File file) {
      this.trustStoreFile = file;
      this.createTrustStore = true;
      return this;
    }

    /** Uses a trust store written earlier by {@link #createNewTrustStore}. */
    public SslConfigsBuilder useExistingTrustStore(File file) {
      this.trustStoreFile = file;
      this.createTrustStore = false;
      return this;
    }

    /** The settings; a server also gets a key store holding the certificate and its key. */
    public Map<String, Object> build() throws IOException, InterruptedException {
      makeStores();
      if (createTrustStore) {
        Files.write(trustStoreFile.toPath(), trustStore);
      }
      Map<String, Object> config = new HashMap<>();
      config.put(SslConfigs.SSL_TRUSTSTORE_LOCATION_CONFIG, trustStoreFile.getPath());
      config.put(SslConfigs.SSL_TRUSTSTORE_PASSWORD_CONFIG, new Password(PASSWORD));
      config.put(SslConfigs.SSL_TRUSTSTORE_TYPE_CONFIG, "PKCS12");
      config.put(SslConfigs.SSL_PROTOCOL_CONFIG, "TLSv1.3");
      config.put(SslConfigs.SSL_ENABLED_PROTOCOLS_CONFIG, List.of("TLSv1.3", "TLSv1.2"));
      if (mode == ConnectionMode.SERVER) {
        File keyStoreFile = TestUtils.tempFile("kafka.server.keystore", ".p12");
        Files.write(keyStoreFile.toPath(), keyStore);
        config.put(SslConfigs.SSL_KEYSTORE_LOCATION_CONFIG, keyStoreFile.getPath());
        config.put(SslConfigs.SSL_KEYSTORE_PASSWORD_CONFIG, new Password(PASSWORD));
        config.put(SslConfigs.SSL_KEY_PASSWORD_CONFIG, new Password(PASSWORD));
        config.put(SslConfigs.SSL_KEYSTORE_TYPE_CONFIG, "PKCS12");
      }
      return config;
    }
  }

  private static synchronized void makeStores() throws IOException, InterruptedException {
    if (keyStore != null) {
      return;
    }
    Path dir = Files.createTempDirectory("zcow-testkit-ssl-");
    try {
      Path keys = dir.resolve("server.p12");
      Path cert = dir.resolve("server.crt");
      Path trust = dir.resolve("trust.p12");
      keytool("-genkeypair", "-alias", "kafka", "-keyalg", "EC", "-groupname", "secp256r1", "-validity", "30",
          "-dname", "CN=localhost", "-ext", "SAN=dns:localhost,ip:127.0.0.1", "-storetype", "PKCS12",
          "-keystore", keys.toString(), "-storepass", PASSWORD, "-keypass", PASSWORD);
      keytool("-exportcert", "-alias", "kafka", "-keystore", keys.toString(), "-storepass", PASSWORD,
          "-file", cert.toString());
      keytool("-importcert", "-noprompt", "-alias", "kafka", "-file", cert.toString(), "-storetype", "PKCS12",
          "-keystore", trust.toString(), "-storepass", PASSWORD);
      keyStore = Files.readAllBytes(keys);
      trustStore = Files.readAllBytes(trust);
    } finally {
      try (var files = Files.list(dir)) {
        for (Path p : files.toList()) {
          Files.deleteIfExists(p);
        }
      }
      Files.deleteIfExists(dir);
    }
  }

  private static void keytool(String... args) throws IOException, InterruptedException {
    List<String> command = new java.util.ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      p.destroyForcibly();
      throw new IOException("keytool " + args[0] + " failed: " + out.strip());
    }
  }
}
