package io.zcow.qcow2;

import java.nio.ByteBuffer;

/** Unaligned reads and writes on a {@link DirectFile}, through aligned bounce buffers when direct. */
final class AlignedIo {
  private AlignedIo() {}

  /** Fills {@code dst} from {@code offset}; bytes past the end of the file read as zeros. */
  static void read(DirectFile file, long offset, ByteBuffer dst) {
    int len = dst.remaining();
    if (!file.isDirect() || isAligned(file, offset, dst)) {
      int n = file.read(dst, offset);
      zeroTail(dst, n);
      return;
    }
    int a = file.alignment();
    long start = offset / a * a;
    int span = (int) (roundUp(offset + len, a) - start);
    ByteBuffer bounce = DirectFile.allocateAligned(span, a);
    int n = file.read(bounce, start);
    zeroTail(bounce, n);
    dst.duplicate().put(bounce.slice((int) (offset - start), len));
  }

  /**
   * Writes {@code src} at {@code offset}. Under O_DIRECT an unaligned extent becomes a
   * read-modify-write of the aligned blocks around it; callers serialize writes that may share a
   * block, or they would undo each other.
   */
  static void write(DirectFile file, long offset, ByteBuffer src) {
    if (!file.isDirect() || isAligned(file, offset, src)) {
      file.write(src, offset);
      return;
    }
    int a = file.alignment();
    int len = src.remaining();
    long start = offset / a * a;
    int span = (int) (roundUp(offset + len, a) - start);
    ByteBuffer bounce = DirectFile.allocateAligned(span, a);
    if (offset != start || len % a != 0) {
      int n = file.read(bounce, start);
      zeroTail(bounce, n);
    }
    bounce.put((int) (offset - start), src, src.position(), len);
    file.write(bounce, start);
  }

  private static boolean isAligned(DirectFile file, long offset, ByteBuffer b) {
    int a = file.alignment();
    return b.isDirect() && offset % a == 0 && b.remaining() % a == 0 && b.alignmentOffset(b.position(), a) == 0;
  }

  private static void zeroTail(ByteBuffer b, int from) {
    for (int i = b.position() + Math.max(0, from); i < b.limit(); i++) {
      b.put(i, (byte) 0);
    }
  }

  static long roundUp(long n, long a) {
    return (n + a - 1) / a * a;
  }
}
