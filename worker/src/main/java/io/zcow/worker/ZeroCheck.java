package io.zcow.worker;

import java.nio.ByteBuffer;

/** Tells an all-zero cluster from the rest, eight longs per step rather than byte by byte. */
final class ZeroCheck {
  /** Lengths must be a multiple of this (every supported cluster size is). */
  static final int GRANULE = 64;

  private ZeroCheck() {}

  /** True when {@code length} bytes of {@code b} from absolute index {@code from} are all zero. */
  static boolean isZero(ByteBuffer b, int from, int length) {
    if (length % GRANULE != 0) {
      throw new IllegalArgumentException("length must be a multiple of " + GRANULE + ": " + length);
    }
    int end = from + length;
    for (int i = from; i < end; i += GRANULE) {
      // OR-ing eight words before the test keeps the loop branch-light; byte order is irrelevant.
      long or = b.getLong(i) | b.getLong(i + 8) | b.getLong(i + 16) | b.getLong(i + 24)
          | b.getLong(i + 32) | b.getLong(i + 40) | b.getLong(i + 48) | b.getLong(i + 56);
      if (or != 0) {
        return false;
      }
    }
    return true;
  }

  /** Zeros {@code b} from absolute index {@code from} to {@code to}. */
  static void fill(ByteBuffer b, int from, int to) {
    int i = from;
    for (; i < to && (i & 7) != 0; i++) {
      b.put(i, (byte) 0);
    }
    for (; i + 8 <= to; i += 8) {
      b.putLong(i, 0L);
    }
    for (; i < to; i++) {
      b.put(i, (byte) 0);
    }
  }
}
