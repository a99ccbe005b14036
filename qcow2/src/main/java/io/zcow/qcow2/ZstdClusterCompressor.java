package io.zcow.qcow2;

import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdException;
import io.zcow.ZcowException;
import java.nio.ByteBuffer;

/**
 * Compresses one guest cluster at a time into one standard zstd frame, reusing its context.
 *
 * <p>Not thread safe: keep one per thread (a context holds a few MiB of tables, and creating one
 * per cluster would cost more than compressing it).
 */
public final class ZstdClusterCompressor implements AutoCloseable {
  /** zstd's accepted level range (negative levels are the fast modes). */
  public static final int MIN_LEVEL = -7;
  public static final int MAX_LEVEL = 22;

  private final int clusterSize;
  private final ZstdCompressCtx ctx;

  public ZstdClusterCompressor(int clusterSize, int level) {
    if (clusterSize <= 0 || Integer.bitCount(clusterSize) != 1) {
      throw new IllegalArgumentException("clusterSize must be a power of 2: " + clusterSize);
    }
    if (level < MIN_LEVEL || level > MAX_LEVEL) {
      throw new IllegalArgumentException("level must be in " + MIN_LEVEL + ".." + MAX_LEVEL + ": " + level);
    }
    this.clusterSize = clusterSize;
    this.ctx = new ZstdCompressCtx();
    ctx.setLevel(level);
    ctx.setChecksum(false);
    ctx.setContentSize(true);
  }

  /**
   * Fails at once, with one line, when zstd-jni cannot load its native library (it unpacks it into
   * {@code java.io.tmpdir}, which must be writable and allow execution). Without this check a
   * worker would take tasks, fail each one and hand it back, for ever.
   *
   * @throws ZcowException naming the cause
   */
  public static void requireNative() {
    try (ZstdCompressCtx probe = new ZstdCompressCtx()) {
      probe.compress(new byte[16]);
    } catch (LinkageError e) {
      throw new ZcowException("zstd cannot load its native library (" + e.getClass().getSimpleName() + ": "
          + e.getMessage() + "); java.io.tmpdir (" + System.getProperty("java.io.tmpdir")
          + ") must be writable and allow execution", e);
    }
  }

  /** Largest payload stored compressed; anything longer is stored raw (QEMU's rule). */
  public static int maxPayload(int clusterSize) {
    return clusterSize - 1;
  }

  /**
   * Compresses the {@code clusterSize} bytes remaining in {@code src} into {@code dst} (which must
   * have at least {@code clusterSize - 1} bytes remaining). Both buffers must be direct, or both
   * heap-backed. Positions are not moved.
   *
   * @return the payload length, or -1 when the cluster does not shrink to {@code clusterSize - 1}
   *     bytes or less and must be stored raw
   */
  public int compress(ByteBuffer src, ByteBuffer dst) {
    if (src.remaining() != clusterSize) {
      throw new IllegalArgumentException("src must hold exactly one cluster (" + clusterSize + "), has " + src.remaining());
    }
    int limit = Math.min(dst.remaining(), maxPayload(clusterSize));
    try {
      if (src.isDirect() && dst.isDirect()) {
        return ctx.compressDirectByteBuffer(dst, dst.position(), limit, src, src.position(), clusterSize);
      }
      if (src.hasArray() && dst.hasArray()) {
        return ctx.compressByteArray(
            dst.array(), dst.arrayOffset() + dst.position(), limit,
            src.array(), src.arrayOffset() + src.position(), clusterSize);
      }
    } catch (ZstdException e) {
      if (e.getErrorCode() == com.github.luben.zstd.Zstd.errDstSizeTooSmall()) {
        return -1;
      }
      throw e;
    }
    throw new IllegalArgumentException("src and dst must both be direct or both be heap buffers");
  }

  @Override
  public void close() {
    ctx.close();
  }
}
