package io.zcow.worker;

/**
 * Decides, on the compressing thread, whether a cluster just read differs from the previous
 * image's: the digest incremental's test. Called for every cluster of a pass, in ascending order.
 */
@FunctionalInterface
public interface ChangeFilter {
  /**
   * @param digest the SHA-256 of the cluster as read, or null when it reads as zeros
   * @return true to store the cluster (compressed, or as a zero cluster), false to leave it to
   *     the previous image
   */
  boolean changed(long guestCluster, byte[] digest);

  /**
   * How many clusters from {@code first} (at most {@code count}), all reading as zeros, are
   * unchanged in a row: {@code changed(c, null)} is false for each. Lets a long hole be settled
   * as one run; the default asks cluster by cluster.
   */
  default long unchangedZeros(long first, long count) {
    long n = 0;
    while (n < count && !changed(first + n, null)) {
      n++;
    }
    return n;
  }
}
