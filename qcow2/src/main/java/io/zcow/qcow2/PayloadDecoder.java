package io.zcow.qcow2;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import io.zcow.CorruptException;
import java.nio.ByteBuffer;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Decompresses one compressed-cluster payload into exactly one cluster.
 *
 * <p>The payload as read from an image runs to the end of its last 512-byte sector, so it may
 * carry trailing bytes after the compressed stream; like QEMU, decoding stops at the end of the
 * zstd frame (or deflate stream) and ignores them. Not thread safe: one per thread.
 */
public final class PayloadDecoder implements AutoCloseable {
  private final int clusterSize;
  private final ZstdDecompressCtx zstd = new ZstdDecompressCtx();
  private final Inflater inflater = new Inflater(true);
  private byte[] in = new byte[0];
  private byte[] out = new byte[0];

  public PayloadDecoder(int clusterSize) {
    if (clusterSize <= 0 || Integer.bitCount(clusterSize) != 1) {
      throw new IllegalArgumentException("clusterSize must be a power of 2: " + clusterSize);
    }
    this.clusterSize = clusterSize;
  }

  /**
   * Decodes {@code payload} (its remaining bytes) into {@code dst}, which receives exactly one
   * cluster at its position; positions are not moved.
   *
   * @param where names the payload in error messages (e.g. "cluster 12 at offset 0x3f200")
   * @throws CorruptException when the payload does not decode to exactly one cluster
   */
  public void decode(Codec codec, ByteBuffer payload, ByteBuffer dst, String where) {
    if (dst.remaining() < clusterSize) {
      throw new IllegalArgumentException("dst has " + dst.remaining() + " bytes, needs " + clusterSize);
    }
    int n = payload.remaining();
    if (n == 0) {
      // zstd-jni answers an empty array with an ArrayIndexOutOfBoundsException, not an error code.
      throw new CorruptException("compressed " + where + " is empty");
    }
    byte[] src = heapCopy(payload);
    int produced;
    try {
      produced = codec == Codec.ZSTD ? zstd(src, n) : zlib(src, n);
    } catch (ZstdException | DataFormatException e) {
      throw new CorruptException("compressed " + where + " does not decompress (" + codec + "): " + e.getMessage(), e);
    }
    if (produced != clusterSize) {
      throw new CorruptException(
          "compressed " + where + " decompresses to " + produced + " bytes, not one cluster of " + clusterSize);
    }
    dst.duplicate().put(ByteBuffer.wrap(out, 0, clusterSize));
  }

  private int zstd(byte[] src, int n) {
    long frame = Zstd.findFrameCompressedSize(src, 0, n);
    if (Zstd.isError(frame) || frame <= 0 || frame > n) {
      throw new ZstdException(frame < 0 ? frame : -1, "no complete zstd frame in " + n + " bytes");
    }
    // One byte of room beyond the cluster so a frame that would produce more is caught.
    ensureOut(clusterSize + 1);
    try {
      return zstd.decompressByteArray(out, 0, clusterSize + 1, src, 0, (int) frame);
    } catch (ZstdException e) {
      if (e.getErrorCode() == Zstd.errDstSizeTooSmall()) {
        return clusterSize + 1;
      }
      throw e;
    }
  }

  private int zlib(byte[] src, int n) throws DataFormatException {
    ensureOut(clusterSize + 1);
    inflater.reset();
    inflater.setInput(src, 0, n);
    int total = 0;
    while (total < clusterSize + 1 && !inflater.finished()) {
      int k = inflater.inflate(out, total, clusterSize + 1 - total);
      if (k == 0 && (inflater.needsInput() || inflater.needsDictionary())) {
        // QEMU's reader accepts a stream cut at the cluster boundary once a cluster is produced.
        break;
      }
      total += k;
    }
    return total;
  }

  private byte[] heapCopy(ByteBuffer payload) {
    if (in.length < payload.remaining()) {
      in = new byte[payload.remaining()];
    }
    payload.duplicate().get(in, 0, payload.remaining());
    return in;
  }

  private void ensureOut(int n) {
    if (out.length < n) {
      out = new byte[n];
    }
  }

  @Override
  public void close() {
    zstd.close();
    inflater.end();
  }
}
