package io.zcow.testkit;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;

/**
 * Valid bytes made hostile, the same way for the same seed: bits flipped, bytes overwritten with
 * the values that break length and offset fields (0, -1, 0x7fffffff, 0x80000000, a huge long),
 * the tail cut off or garbage appended. For property tests of decoders: the seed is the whole
 * case, so a failing one becomes a plain test with that seed.
 */
public final class HostileBytes {
  private static final long[] NASTY = {
    0, -1, 1, 0x7fff_ffffL, 0x8000_0000L, 0xffff_fffeL, Long.MAX_VALUE, Long.MIN_VALUE, 0x0100_0000_0000L, 512, 65536
  };

  private HostileBytes() {}

  /** {@code valid} changed by one to four mutations chosen by {@code seed}; {@code valid} is untouched. */
  public static byte[] mutate(byte[] valid, long seed) {
    Random r = new Random(seed);
    byte[] b = valid.clone();
    int rounds = 1 + r.nextInt(4);
    for (int i = 0; i < rounds; i++) {
      b = once(b, r);
    }
    return b;
  }

  /**
   * Like {@link #mutate} but only within the first {@code head} bytes (where headers and tables
   * live), and never changing the length: for images, whose bulk is payload.
   */
  public static byte[] mutateHead(byte[] valid, int head, long seed) {
    Random r = new Random(seed);
    byte[] b = valid.clone();
    int limit = Math.min(head, b.length);
    int rounds = 1 + r.nextInt(4);
    for (int i = 0; i < rounds && limit > 0; i++) {
      int at = r.nextInt(limit);
      if (r.nextBoolean()) {
        b[at] ^= (byte) (1 << r.nextInt(8));
      } else {
        putNasty(b, at, r);
      }
    }
    return b;
  }

  private static byte[] once(byte[] b, Random r) {
    if (b.length == 0) {
      return randomBytes(r, r.nextInt(64));
    }
    int at = r.nextInt(b.length);
    switch (r.nextInt(5)) {
      case 0 -> b[at] ^= (byte) (1 << r.nextInt(8));
      case 1 -> putNasty(b, at, r);
      case 2 -> b = Arrays.copyOf(b, at);
      case 3 -> {
        byte[] tail = randomBytes(r, 1 + r.nextInt(64));
        byte[] longer = Arrays.copyOf(b, b.length + tail.length);
        System.arraycopy(tail, 0, longer, b.length, tail.length);
        b = longer;
      }
      default -> b[at] = (byte) r.nextInt(256);
    }
    return b;
  }

  /** A nasty value, 4 or 8 bytes big-endian, at {@code at} (cut at the end of {@code b}). */
  private static void putNasty(byte[] b, int at, Random r) {
    long v = NASTY[r.nextInt(NASTY.length)];
    byte[] bytes = r.nextBoolean() ? ByteBuffer.allocate(8).putLong(v).array() : ByteBuffer.allocate(4).putInt((int) v).array();
    System.arraycopy(bytes, 0, b, at, Math.min(bytes.length, b.length - at));
  }

  private static byte[] randomBytes(Random r, int n) {
    byte[] b = new byte[n];
    r.nextBytes(b);
    return b;
  }
}
