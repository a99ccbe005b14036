package io.zcow.worker;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * CRC32C of a byte stream fed in pieces, where runs of zeros cost O(log n) instead of O(n): a
 * 16 TiB sparse disk must not take an hour of checksumming its holes.
 *
 * <p>The math: appending n zero bytes to a CRC register multiplies it by x^(8n) modulo the CRC32C
 * polynomial, and CRC(A || B) = CRC(A) * x^(8|B|) + CRC(B), since the pre- and post-inversion of
 * the two halves cancel. Polynomials are kept bit-reflected, as the CRC is (x^0 is bit 31). The
 * value matches {@link CRC32C#getValue()} over the same bytes. Not thread safe.
 */
final class RunningCrc32c {
  /** CRC32C (Castagnoli) polynomial, bit-reflected. */
  private static final int POLY = 0x82F63B78;
  private static final int X0 = 0x80000000;
  /** X_POW_2K[k] = x^(2^k) mod POLY. */
  private static final int[] X_POW_2K = new int[64];

  static {
    X_POW_2K[0] = X0 >>> 1; // x^1
    for (int k = 1; k < X_POW_2K.length; k++) {
      X_POW_2K[k] = multiply(X_POW_2K[k - 1], X_POW_2K[k - 1]);
    }
  }

  private final CRC32C piece = new CRC32C();
  private int crc; // CRC32C of everything fed so far (0 for nothing)

  /** Adds the remaining bytes of {@code b}; its position is not moved. */
  void update(ByteBuffer b) {
    int n = b.remaining();
    piece.reset();
    piece.update(b.duplicate());
    crc = shift(crc, n) ^ (int) piece.getValue();
  }

  /** Adds {@code n} zero bytes. */
  void updateZeros(long n) {
    if (n < 0) {
      throw new IllegalArgumentException("n must not be negative: " + n);
    }
    crc = ~shift(~crc, n);
  }

  /** The CRC32C so far, as {@link CRC32C#getValue()} reports it (0 to 2^32 - 1). */
  long value() {
    return Integer.toUnsignedLong(crc);
  }

  void reset() {
    crc = 0;
  }

  /** c * x^(8 * bytes) mod POLY. */
  private static int shift(int c, long bytes) {
    long e = bytes << 3; // bytes < 2^60: any file size
    int p = X0;
    for (int k = 0; e != 0; k++, e >>>= 1) {
      if ((e & 1) != 0) {
        p = multiply(X_POW_2K[k], p);
      }
    }
    return multiply(p, c);
  }

  /** a * b mod POLY, both bit-reflected. */
  private static int multiply(int a, int b) {
    int p = 0;
    for (int i = 0; i < 32; i++) {
      if ((a & (X0 >>> i)) != 0) {
        p ^= b;
      }
      b = (b & 1) != 0 ? (b >>> 1) ^ POLY : b >>> 1;
    }
    return p;
  }
}
