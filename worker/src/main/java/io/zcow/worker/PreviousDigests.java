package io.zcow.worker;

import io.zcow.qcow2.Manifest;
import java.util.Arrays;

/**
 * A span of the previous image's digest manifest as a {@link ChangeFilter}: a cluster changed when
 * its digest differs from the previous one (a zero cluster where the previous was not zero, or
 * data where it was zero or other data). Entries past the previous image's end are zero: there an
 * overlay reads zeros through its backing file. Not thread safe.
 */
public final class PreviousDigests implements ChangeFilter {
  private long first;
  private int count;
  private byte[] entries = new byte[0];
  private long changed;
  private long unchanged;

  /** Holds the entries of {@code count} clusters from {@code first} (32 bytes each); returns this. */
  public PreviousDigests span(long first, int count, byte[] entries) {
    if (entries.length < count * Manifest.DIGEST_BYTES) {
      throw new IllegalArgumentException("entries must hold " + count + " digests: " + entries.length + " bytes");
    }
    this.first = first;
    this.count = count;
    this.entries = entries;
    return this;
  }

  @Override
  public boolean changed(long guestCluster, byte[] digest) {
    long i = guestCluster - first;
    if (i < 0 || i >= count) {
      throw new IllegalArgumentException("cluster " + guestCluster + " is outside the span " + first + "+" + count);
    }
    int at = (int) i * Manifest.DIGEST_BYTES;
    boolean same = digest == null ? Manifest.isZero(entries, at)
        : Arrays.equals(entries, at, at + Manifest.DIGEST_BYTES, digest, 0, Manifest.DIGEST_BYTES);
    if (same) {
      unchanged++;
    } else {
      changed++;
    }
    return !same;
  }

  /** Zero entries in a row, compared a block at a time (vectorised by {@link Arrays#mismatch}). */
  @Override
  public long unchangedZeros(long guestCluster, long max) {
    long i = guestCluster - first;
    if (i < 0 || i >= count || max < 0) {
      throw new IllegalArgumentException("cluster " + guestCluster + " is outside the span " + first + "+" + count);
    }
    int from = (int) i * Manifest.DIGEST_BYTES;
    int to = (int) Math.min(count, i + max) * Manifest.DIGEST_BYTES;
    int at = from;
    while (at < to) {
      int n = Math.min(ZEROS.length, to - at);
      int m = Arrays.mismatch(entries, at, at + n, ZEROS, 0, n);
      if (m >= 0) {
        at += m;
        break;
      }
      at += n;
    }
    long same = (at - from) / Manifest.DIGEST_BYTES;
    unchanged += same;
    return same;
  }

  private static final byte[] ZEROS = new byte[64 * 1024];

  /** Clusters found changed so far (over every span). */
  public long changedCount() {
    return changed;
  }

  /** Clusters found unchanged so far. */
  public long unchangedCount() {
    return unchanged;
  }
}
