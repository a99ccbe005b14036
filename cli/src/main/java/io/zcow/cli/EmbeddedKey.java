package io.zcow.cli;

import io.zcow.proto.kafka.RecordAuth;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Arrays;

/**
 * The record key an embedded cluster makes for itself when the operator gives none: random, held
 * in memory for the in-process roles, and written to a file only this user can read when workers
 * of other hosts are to join ({@code --listen}).
 */
final class EmbeddedKey {
  private EmbeddedKey() {}

  /** A fresh random key of {@link RecordAuth#MIN_KEY_BYTES} bytes. */
  static byte[] random() {
    byte[] key = new byte[RecordAuth.MIN_KEY_BYTES];
    new SecureRandom().nextBytes(key);
    return key;
  }

  /**
   * Writes {@code key} to a new file of mode 0600 in {@code dir} (created with that mode, so it
   * is never readable by others, not even for a moment); the caller deletes it when the job ends.
   */
  static Path writeFile(byte[] key, Path dir) {
    try {
      Path file = Files.createTempFile(dir, "zcow-", ".key",
          PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      Files.write(file, key);
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the embedded cluster's key file in " + dir, e);
    }
  }

  /** The command line that joins a worker of another host to this embedded cluster. */
  static String joinCommand(String bootstrap, Path keyFile, String sourceAllow) {
    return "zcow worker --kafka " + bootstrap + " --auth-key-file " + keyFile
        + (sourceAllow == null ? "" : " --source-allow " + sourceAllow);
  }

  /** The key as {@link RecordAuth}; {@code key} is wiped. */
  static RecordAuth auth(byte[] key) {
    try {
      return RecordAuth.withKey(key);
    } finally {
      Arrays.fill(key, (byte) 0);
    }
  }
}
