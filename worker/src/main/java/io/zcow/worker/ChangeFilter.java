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
}
