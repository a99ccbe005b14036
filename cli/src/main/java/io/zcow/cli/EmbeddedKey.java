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
  /** The key's file name in {@code --state-dir}. */
  static final String STATE_KEY = "cluster.key";

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

  /**
   * The key of an embedded cluster whose state outlives the run ({@code --state-dir}): made once
   * in {@code STATE_DIR/cluster.key} (mode 0600) and read again by the runs that resume its jobs,
   * whose records in the kept broker data it signed.
   */
  static Path stateFile(Path stateDir) {
    Path file = stateDir.resolve(STATE_KEY);
    if (!Files.exists(file, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      byte[] key = random();
      try {
        Files.write(Files.createFile(file,
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"))), key);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot write the embedded cluster's key file " + file, e);
      } finally {
        Arrays.fill(key, (byte) 0);
      }
    }
    return file;
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
