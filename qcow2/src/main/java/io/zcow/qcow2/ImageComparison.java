package io.zcow.qcow2;

import io.zcow.RetriableException;
import io.zcow.source.Source;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/** Compares a raw file with an image's guest data: see {@link ImageReader#firstDifference}. */
final class ImageComparison {
  /** Bytes compared at a time: a multiple of every cluster size. */
  private static final int CHUNK = 4 << 20;
  private static final int SECTOR = 512;

  private ImageComparison() {}

  /** Fills a buffer with the raw side's bytes at an offset. */
  private interface RawReader {
    void readFully(ByteBuffer b, long offset);
  }

  static long firstDifference(Path raw, Path image) {
    try (ImageFile source = ImageFile.open(raw)) {
      return firstDifference(source.size(), (b, pos) -> source.readFully(b, pos, "raw data"), image);
    }
  }

  static long firstDifference(Source raw, Path image) {
    return firstDifference(raw.size(), (b, pos) -> {
      int want = b.remaining();
      int n = raw.read(b, pos);
      if (n != want) {
        throw new RetriableException(raw.describe() + " gave " + n + " of " + want + " bytes at 0x"
            + Long.toHexString(pos), null);
      }
      b.position(b.limit());
    }, image);
  }

  private static long firstDifference(long rawSize, RawReader source, Path image) {
    try (ImageReader reader = ImageReader.open(image)) {
      long virtualSize = reader.virtualSize();
      long common = Math.min(rawSize, virtualSize);
      ByteBuffer expected = ByteBuffer.allocate(CHUNK);
      ByteBuffer actual = ByteBuffer.allocate(CHUNK);
      for (long pos = 0; pos < common; pos += CHUNK) {
        int n = (int) Math.min(CHUNK, common - pos);
        expected.clear().limit(n);
        source.readFully(expected, pos);
        actual.clear().limit(n);
        reader.read(pos, actual);
        int m = expected.flip().mismatch(actual.flip());
        if (m >= 0) {
          return pos + m;
        }
      }
      if (virtualSize < rawSize) {
        return virtualSize; // the image lacks the end of the raw file
      }
      // qemu-img rounds the virtual size up to 512: that tail must read as zeros, and no more is
      // expected.
      long rounded = (rawSize + SECTOR - 1) & -SECTOR;
      long tailEnd = Math.min(virtualSize, rounded);
      if (tailEnd > rawSize) {
        ByteBuffer tail = ByteBuffer.allocate((int) (tailEnd - rawSize));
        reader.read(rawSize, tail);
        int m = tail.flip().mismatch(ByteBuffer.allocate(tail.limit()));
        if (m >= 0) {
          return rawSize + m;
        }
      }
      return virtualSize > rounded ? rounded : -1;
    }
  }
}
