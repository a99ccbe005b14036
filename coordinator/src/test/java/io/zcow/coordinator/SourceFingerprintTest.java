package io.zcow.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.zcow.proto.SourceIdentity;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SourceFingerprintTest {
  private static final long MIB = 1 << 20;

  @TempDir Path dir;

  @Test
  void holesHashAsZerosAndOnlySampledBytesCount() throws IOException {
    Path sparse = file("sparse.raw", 16 * MIB, -1);
    Path dense = dir.resolve("dense.raw");
    try (RandomAccessFile f = new RandomAccessFile(dense.toFile(), "rw")) {
      f.write(new byte[(int) (16 * MIB)]);
    }
    assertEquals(identity(sparse), identity(dense), "a hole reads as zeros");
    assertEquals(identity(sparse), identity(file("outside.raw", 16 * MIB, 4 * MIB)),
        "a byte outside the first, middle and last MiB is not sampled");
    for (long at : new long[] {0, 8 * MIB - 1, 16 * MIB - 1}) {
      assertNotEquals(identity(sparse), identity(file("changed-" + at + ".raw", 16 * MIB, at)), "byte " + at);
    }
    assertNotEquals(identity(sparse), identity(file("longer.raw", 16 * MIB + 512, -1)), "the size counts");
  }

  /** The hash of the first, middle and last MiB as plain reads see them, at any size. */
  @Test
  void hashesExactlyTheSampledBytesWhateverTheAlignment() throws Exception {
    for (long size : new long[] {4096, 5000, 3 * MIB + 777, 8 * MIB + 512}) {
      Path p = dir.resolve("random-" + size + ".raw");
      byte[] bytes = new byte[(int) size];
      new java.util.Random(size).nextBytes(bytes);
      java.nio.file.Files.write(p, bytes);
      java.security.MessageDigest sha = java.security.MessageDigest.getInstance("SHA-256");
      sha.update(java.nio.ByteBuffer.allocate(Long.BYTES).putLong(0, size));
      int sample = SourceFingerprint.SAMPLE_BYTES;
      for (long offset : new long[] {0, Math.max(0, size / 2 - sample / 2), Math.max(0, size - sample)}) {
        sha.update(bytes, (int) offset, (int) Math.min(sample, size - offset));
      }
      assertEquals(com.google.protobuf.ByteString.copyFrom(sha.digest()), identity(p).getFingerprint(), "size " + size);
    }
  }

  @Test
  void describesSizeAndTheHashsFirstBytes() throws IOException {
    String d = SourceFingerprint.describe(identity(file("small.raw", 4096, 0)));
    assertEquals(true, d.matches("size 4096, fingerprint [0-9a-f]{16}"), d);
  }

  private Path file(String name, long size, long changedByte) throws IOException {
    Path p = dir.resolve(name);
    try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
      f.setLength(size);
      if (changedByte >= 0) {
        f.seek(changedByte);
        f.write(1);
      }
    }
    return p;
  }

  private static SourceIdentity identity(Path p) {
    try (Source s = Source.open(p, SourceCache.AUTO)) {
      return SourceFingerprint.of(s);
    }
  }
}
