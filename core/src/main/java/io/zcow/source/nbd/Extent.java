package io.zcow.source.nbd;

/**
 * A run of bytes with one status in one meta context.
 *
 * @param offset where it starts
 * @param length how long it is, positive
 * @param flags the status flags, read by the context's rules ({@link #zero()} for {@code
 *     base:allocation}, {@link #dirty()} for {@code qemu:dirty-bitmap:NAME})
 */
record Extent(long offset, long length, int flags) {
  Extent {
    if (offset < 0 || length <= 0) {
      throw new IllegalArgumentException("extent at " + offset + " of " + length + " bytes");
    }
  }

  long end() {
    return offset + length;
  }

  /** base:allocation: it reads as zeros (NBD_STATE_ZERO); a hole without this flag may hold anything. */
  boolean zero() {
    return (flags & Nbd.STATE_ZERO) != 0;
  }

  /** qemu:dirty-bitmap:NAME: it changed since the bitmap started recording. */
  boolean dirty() {
    return (flags & Nbd.STATE_DIRTY) != 0;
  }
}
