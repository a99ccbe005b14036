package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.luben.zstd.Zstd;
import io.zcow.CorruptException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.Deflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@link ZstdClusterCompressor} and {@link PayloadDecoder} together. */
class PayloadCodecTest {
  private static final int CS = 65536;

  @ParameterizedTest
  @ValueSource(ints = {4096, 65536, 2 << 20})
  void compressedClusterDecodesToTheSameBytes(int clusterSize) {
    byte[] cluster = compressible(clusterSize, 1);
    byte[] payload = compress(cluster, clusterSize);
    assertTrue(payload.length < clusterSize / 2, "text-like data shrinks: " + payload.length);
    assertArrayEqualsCluster(cluster, decode(Codec.ZSTD, payload, clusterSize));
  }

  @Test
  void directBuffersCompressToo() {
    byte[] cluster = compressible(CS, 2);
    ByteBuffer src = ByteBuffer.allocateDirect(CS).put(cluster).flip();
    ByteBuffer dst = ByteBuffer.allocateDirect(CS);
    try (ZstdClusterCompressor c = new ZstdClusterCompressor(CS, 3)) {
      int n = c.compress(src, dst);
      assertTrue(n > 0 && n < CS);
      assertEquals(0, src.position(), "positions are not moved");
      assertEquals(0, dst.position());
      byte[] payload = new byte[n];
      dst.get(payload);
      assertArrayEqualsCluster(cluster, decode(Codec.ZSTD, payload, CS));
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {4096, 65536})
  void randomDataDoesNotShrinkAndIsReportedAsMinusOne(int clusterSize) {
    byte[] cluster = new byte[clusterSize];
    new Random(3).nextBytes(cluster);
    try (ZstdClusterCompressor c = new ZstdClusterCompressor(clusterSize, 3)) {
      assertEquals(-1, c.compress(ByteBuffer.wrap(cluster), ByteBuffer.allocate(clusterSize)));
    }
  }

  @Test
  void payloadFollowedByTrailingBytesStillDecodes() {
    // Read from an image, a payload runs to the end of its last sector: the rest is other data.
    byte[] cluster = compressible(CS, 4);
    byte[] payload = compress(cluster, CS);
    byte[] withTail = Arrays.copyOf(payload, payload.length + 511);
    new Random(5).nextBytes(withTail);
    System.arraycopy(payload, 0, withTail, 0, payload.length);
    assertArrayEqualsCluster(cluster, decode(Codec.ZSTD, withTail, CS));
  }

  @Test
  void truncatedZstdPayloadIsCorrupt() {
    byte[] payload = compress(compressible(CS, 6), CS);
    CorruptException e = assertThrows(CorruptException.class,
        () -> decode(Codec.ZSTD, Arrays.copyOf(payload, payload.length / 2), CS));
    assertTrue(e.getMessage().contains("cluster 7 at 0x1234"), e.getMessage());
  }

  @Test
  void garbageIsCorrupt() {
    byte[] garbage = new byte[700];
    new Random(7).nextBytes(garbage);
    assertThrows(CorruptException.class, () -> decode(Codec.ZSTD, garbage, CS));
    assertThrows(CorruptException.class, () -> decode(Codec.ZLIB, garbage, CS));
  }

  @Test
  void payloadWithGarbageInTheMiddleIsCorrupt() {
    byte[] payload = compress(compressible(CS, 8), CS);
    for (int i = payload.length / 3; i < payload.length / 3 + 64; i++) {
      payload[i] ^= (byte) 0x5a;
    }
    assertThrows(CorruptException.class, () -> decode(Codec.ZSTD, payload, CS));
  }

  @Test
  void emptyPayloadIsCorrupt() {
    assertThrows(CorruptException.class, () -> decode(Codec.ZSTD, new byte[0], CS));
    assertThrows(CorruptException.class, () -> decode(Codec.ZLIB, new byte[0], CS));
  }

  @Test
  void frameOfTheWrongSizeIsCorrupt() {
    byte[] half = Zstd.compress(compressible(CS / 2, 9), 3);
    CorruptException e = assertThrows(CorruptException.class, () -> decode(Codec.ZSTD, half, CS));
    assertTrue(e.getMessage().contains(String.valueOf(CS / 2)), e.getMessage());
    byte[] twice = Zstd.compress(compressible(2 * CS, 9), 3);
    assertThrows(CorruptException.class, () -> decode(Codec.ZSTD, twice, CS));
  }

  @Test
  void rawDeflatePayloadDecodes() {
    byte[] cluster = compressible(CS, 10);
    byte[] payload = deflate(cluster);
    assertArrayEqualsCluster(cluster, decode(Codec.ZLIB, payload, CS));
    // And with the rest of its last sector behind it.
    byte[] withTail = Arrays.copyOf(payload, payload.length + 300);
    Arrays.fill(withTail, payload.length, withTail.length, (byte) 0xa5);
    assertArrayEqualsCluster(cluster, decode(Codec.ZLIB, withTail, CS));
  }

  @Test
  void truncatedOrOversizedDeflatePayloadIsCorrupt() {
    byte[] payload = deflate(compressible(CS, 11));
    assertThrows(CorruptException.class, () -> decode(Codec.ZLIB, Arrays.copyOf(payload, payload.length / 2), CS));
    byte[] twice = deflate(compressible(2 * CS, 11));
    assertThrows(CorruptException.class, () -> decode(Codec.ZLIB, twice, CS));
  }

  @Test
  void decodeWritesOneClusterAtTheDestinationPositionWithoutMovingIt() {
    byte[] cluster = compressible(CS, 12);
    ByteBuffer dst = ByteBuffer.allocate(CS + 100).position(100);
    try (PayloadDecoder d = new PayloadDecoder(CS)) {
      d.decode(Codec.ZSTD, ByteBuffer.wrap(compress(cluster, CS)), dst, "cluster 1");
    }
    assertEquals(100, dst.position());
    assertArrayEqualsCluster(cluster, Arrays.copyOfRange(dst.array(), 100, 100 + CS));
  }

  /** Text-like bytes: repeated words with some variation, about 3:1 under zstd. */
  static byte[] compressible(int size, long seed) {
    String[] words = {"block ", "device ", "cluster ", "qcow2 ", "zstd ", "backup ", "sector ", "\n"};
    Random r = new Random(seed);
    StringBuilder sb = new StringBuilder(size + 16);
    while (sb.length() < size) {
      sb.append(words[r.nextInt(words.length)]);
      if (r.nextInt(8) == 0) {
        sb.append(r.nextInt(100_000));
      }
    }
    return Arrays.copyOf(sb.toString().getBytes(StandardCharsets.US_ASCII), size);
  }

  private static byte[] compress(byte[] cluster, int clusterSize) {
    try (ZstdClusterCompressor c = new ZstdClusterCompressor(clusterSize, 3)) {
      ByteBuffer dst = ByteBuffer.allocate(clusterSize);
      int n = c.compress(ByteBuffer.wrap(cluster), dst);
      assertTrue(n > 0, "compressible data compresses");
      return Arrays.copyOf(dst.array(), n);
    }
  }

  /** Raw deflate with a 4 KiB window is what QEMU writes; Deflater(nowrap) writes raw deflate too. */
  private static byte[] deflate(byte[] data) {
    Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
    try {
      d.setInput(data);
      d.finish();
      byte[] out = new byte[data.length + 1024];
      int n = 0;
      while (!d.finished()) {
        n += d.deflate(out, n, out.length - n);
      }
      return Arrays.copyOf(out, n);
    } finally {
      d.end();
    }
  }

  private static byte[] decode(Codec codec, byte[] payload, int clusterSize) {
    try (PayloadDecoder d = new PayloadDecoder(clusterSize)) {
      ByteBuffer dst = ByteBuffer.allocate(clusterSize);
      d.decode(codec, ByteBuffer.wrap(payload), dst, "cluster 7 at 0x1234");
      return dst.array();
    }
  }

  private static void assertArrayEqualsCluster(byte[] expected, byte[] actual) {
    assertEquals(-1, Arrays.mismatch(expected, actual), "first differing byte");
  }
}
