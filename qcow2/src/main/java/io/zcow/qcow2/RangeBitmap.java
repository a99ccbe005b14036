package io.zcow.qcow2;

/** Which guest clusters of one range have arrived. Not thread safe. */
final class RangeBitmap {
  private final long[] words;
  private final int size;
  private int count;

  RangeBitmap(int size) {
    if (size <= 0) {
      throw new IllegalArgumentException("size must be positive: " + size);
    }
    this.size = size;
    this.words = new long[(size + 63) >>> 6];
  }

  static RangeBitmap of(int size, long[] words) {
    RangeBitmap b = new RangeBitmap(size);
    if (words.length != b.words.length) {
      throw new IllegalArgumentException("expected " + b.words.length + " words, got " + words.length);
    }
    System.arraycopy(words, 0, b.words, 0, words.length);
    for (long w : words) {
      b.count += Long.bitCount(w);
    }
    return b;
  }

  boolean get(int i) {
    return (words[i >>> 6] & (1L << i)) != 0;
  }

  /** Sets bits [from, to); returns how many were not set before. */
  int setRange(int from, int to) {
    int added = 0;
    for (int i = from; i < to; ) {
      int w = i >>> 6;
      int end = Math.min(to, (w + 1) << 6);
      long mask = (end - i == 64) ? -1L : ((1L << (end - i)) - 1) << i;
      added += Long.bitCount(mask & ~words[w]);
      words[w] |= mask;
      i = end;
    }
    count += added;
    return added;
  }

  boolean isFull() {
    return count == size;
  }

  int size() {
    return size;
  }

  long[] words() {
    return words.clone();
  }
}
