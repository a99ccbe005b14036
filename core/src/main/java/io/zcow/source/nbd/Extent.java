package io.zcow.source.nbd;

/**
 * A run of bytes with one {@code base:allocation} status.
 *
 * @param offset where it starts
 * @param length how long it is, positive
 * @param zero it reads as zeros (NBD_STATE_ZERO); a hole without this flag may hold anything
 */
record Extent(long offset, long length, boolean zero) {
  Extent {
    if (offset < 0 || length <= 0) {
      throw new IllegalArgumentException("extent at " + offset + " of " + length + " bytes");
    }
  }

  long end() {
    return offset + length;
  }
}
