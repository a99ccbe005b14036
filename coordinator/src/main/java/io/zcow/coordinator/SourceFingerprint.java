package io.zcow.coordinator;

import com.google.protobuf.ByteString;
import io.zcow.proto.SourceIdentity;
import io.zcow.qcow2.DirectFile;
import io.zcow.source.Source;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * What a source is at submission, cheaply: its size and a SHA-256 over its first, middle and last
 * MiB (holes read as zeros). A resumed job compares it with the identity its JobSpec was first
 * published with, so a disk replaced or rewritten between runs is not merged into one image.
 * Changes outside the sampled blocks go unnoticed: the check catches the wrong disk, not every edit.
 */
public final class SourceFingerprint {
  /** Bytes hashed at each of the three places. */
  static final int SAMPLE_BYTES = 1 << 20;
  private static final int ALIGNMENT = DirectFile.MIN_ALIGNMENT;

  private SourceFingerprint() {}

  public static SourceIdentity of(Source source) {
    long size = source.size();
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime has SHA-256", e);
    }
    // Each sample is read as the aligned window around it, into an aligned buffer, so that a
    // source opened for O_DIRECT is read past the page cache here too (plain reads left 4 MiB of
    // the source cached); only the sample's own bytes are hashed.
    ByteBuffer window = DirectFile.allocateAligned(SAMPLE_BYTES + 2 * ALIGNMENT, ALIGNMENT);
    sha.update(ByteBuffer.allocate(Long.BYTES).putLong(0, size));
    long[] offsets = {0, Math.max(0, size / 2 - SAMPLE_BYTES / 2), Math.max(0, size - SAMPLE_BYTES)};
    for (long offset : offsets) {
      long start = offset - offset % ALIGNMENT;
      long end = roundUp(Math.min(offset + SAMPLE_BYTES, size));
      window.clear().limit((int) (end - start));
      int got = source.read(window, start);
      int from = (int) (offset - start);
      int to = (int) Math.min(got, from + Math.min(SAMPLE_BYTES, size - offset));
      if (to > from) {
        sha.update(window.duplicate().position(from).limit(to));
      }
    }
    return SourceIdentity.newBuilder().setSize(size).setFingerprint(ByteString.copyFrom(sha.digest())).build();
  }

  /** "size N, fingerprint 0123456789abcdef" (the first 8 bytes of the hash), for messages. */
  private static long roundUp(long offset) {
    return (offset + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
  }

  public static String describe(SourceIdentity id) {
    byte[] f = id.getFingerprint().toByteArray();
    String hex = HexFormat.of().formatHex(f, 0, Math.min(8, f.length));
    return "size " + id.getSize() + ", fingerprint " + (hex.isEmpty() ? "none" : hex);
  }
}
