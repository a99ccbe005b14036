package io.zcow.qcow2;

import io.zcow.CorruptException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.security.MessageDigest;

/**
 * What binds a digest manifest to its image: SHA-256 over the image's header cluster (header,
 * extensions, backing file name), its L1 table and every L2 table the L1 table points to, in L1
 * order. Any write through QEMU to a compressed or unallocated cluster (what {@code qemu-img
 * commit} does to a zcow image) changes an L2 entry, and a header change (dirty bit, a new backing
 * name) changes cluster 0, so a manifest of a changed image no longer matches. Not caught: an
 * in-place rewrite of a raw (incompressible) cluster, whose L2 entry stays; see docs/DESIGN.md.
 *
 * <p>Reads one cluster at a time (an L2 table at most): bounded memory at any disk size.
 */
public final class ImageIdentity {
  private ImageIdentity() {}

  /**
   * @throws CorruptException when the image's metadata lies outside the file
   * @throws UncheckedIOException when it cannot be read
   */
  public static byte[] of(Path image) {
    try (FileChannel ch = FileChannel.open(image)) {
      ByteBuffer head = ByteBuffer.allocate(Header.V3_LENGTH);
      readFully(ch, head, 0, image);
      Header h = Header.decode(head.flip());
      int cs = h.clusterSize();
      long size = ch.size();
      MessageDigest sha = Manifest.sha256();
      ByteBuffer cluster = ByteBuffer.allocate(cs).order(ByteOrder.BIG_ENDIAN);
      readFully(ch, cluster.clear(), 0, image);
      sha.update(cluster.flip());
      long l1Bytes = (long) h.l1Size() * 8;
      if (h.l1TableOffset() + l1Bytes > size) {
        throw new CorruptException(String.format("%s: L1 table at 0x%x (%d bytes) lies past the file's end 0x%x",
            image, h.l1TableOffset(), l1Bytes, size));
      }
      ByteBuffer l2 = ByteBuffer.allocate(cs);
      for (long done = 0; done < l1Bytes; done += cs) {
        int n = (int) Math.min(cs, l1Bytes - done);
        readFully(ch, cluster.clear().limit(n), h.l1TableOffset() + done, image);
        sha.update(cluster.flip());
        for (int i = 0; i < n; i += 8) {
          long l2Offset = cluster.getLong(i) & L2Entry.OFFSET_MASK;
          if (l2Offset == 0) {
            continue;
          }
          if (l2Offset + cs > size) {
            throw new CorruptException(String.format("%s: L2 table at 0x%x lies past the file's end 0x%x",
                image, l2Offset, size));
          }
          readFully(ch, l2.clear(), l2Offset, image);
          sha.update(l2.flip());
        }
      }
      return sha.digest();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + image + " for its identity", e);
    }
  }

  private static void readFully(FileChannel ch, ByteBuffer dst, long at, Path image) throws IOException {
    long pos = at;
    while (dst.hasRemaining()) {
      int n = ch.read(dst, pos);
      if (n < 0) {
        throw new CorruptException(String.format("%s is truncated at 0x%x", image, pos));
      }
      pos += n;
    }
  }
}
