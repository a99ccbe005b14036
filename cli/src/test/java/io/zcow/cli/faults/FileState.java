package io.zcow.cli.faults;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.concurrent.TimeUnit;

/** Size, modification time and content hash of a file: equal when nothing wrote it. */
record FileState(long size, long mtimeNanos, String sha256) {
  static FileState of(Path p) throws IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    try (InputStream in = Files.newInputStream(p)) {
      byte[] buf = new byte[1 << 20];
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return new FileState(Files.size(p), Files.getLastModifiedTime(p).to(TimeUnit.NANOSECONDS),
        HexFormat.of().formatHex(md.digest()));
  }
}
