package io.zcow.io;

import java.nio.ByteBuffer;

/**
 * Memory and sizes for O_DIRECT: the JDK refuses a direct read or write unless offset, length and
 * buffer address are multiples of the file system's block size.
 */
public final class Aligned {
  /** Never align to less than a page: some devices report 512 but O_DIRECT wants more. */
  public static final int MIN_ALIGNMENT = 4096;

  private Aligned() {}

  /** A direct buffer of {@code size} bytes whose address is a multiple of {@code alignment}. */
  public static ByteBuffer allocate(int size, int alignment) {
    return ByteBuffer.allocateDirect(size + alignment).alignedSlice(alignment).limit(size).slice();
  }
}
