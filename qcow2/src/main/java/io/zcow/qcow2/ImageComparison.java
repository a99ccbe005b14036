package io.zcow.qcow2;

import java.nio.ByteBuffer;
import java.nio.file.Path;

/** Compares a raw file with an image's guest data: see {@link ImageReader#firstDifference}. */
final class ImageComparison {
  /** Bytes compared at a time: a multiple of every cluster size. */
  private static final int CHUNK = 4 << 20;
  private static final int SECTOR = 512;

  private ImageComparison() {}

  static long firstDifference(Path raw, Path image) {
    try (ImageFile source = ImageFile.open(raw); ImageReader reader = ImageReader.open(image)) {
      long rawSize = source.size();
      long virtualSize = reader.virtualSize();
      long common = Math.min(rawSize, virtualSize);
      ByteBuffer expected = ByteBuffer.allocate(CHUNK);
      ByteBuffer actual = ByteBuffer.allocate(CHUNK);
      for (long pos = 0; pos < common; pos += CHUNK) {
        int n = (int) Math.min(CHUNK, common - pos);
        expected.clear().limit(n);
        source.readFully(expected, pos, "raw data");
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
