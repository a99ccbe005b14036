package io.zcow.qcow2;

import io.zcow.BadInputException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.zip.CRC32C;

/**
 * The digest manifest of an image ({@code IMAGE.digests}): one SHA-256 per guest cluster, so an
 * incremental backup of any source can tell which clusters changed without a dirty bitmap.
 *
 * <p>Layout (big-endian): a {@value #HEADER_BYTES}-byte header, then {@value #DIGEST_BYTES} bytes
 * per guest cluster at {@code HEADER_BYTES + cluster * DIGEST_BYTES}, covering the whole disk (an
 * overlay's manifest carries its backing file's digests forward for the clusters it does not
 * store). The digest is over the cluster as the image reads it: a whole cluster, the source's last
 * partial cluster padded with zeros. An entry of 32 zero bytes marks a cluster that reads as
 * zeros; a SHA-256 of 32 zero bytes has no known preimage. Entries are written in place, in any
 * order, so a sparse source gives a sparse manifest (a hole reads as zero entries) and nothing is
 * ever held whole in memory.
 *
 * <p>Header: magic {@code ZCOWDGST} at 0; version (1) at 8; algorithm (1 = SHA-256) at 12; digest
 * length (32) at 16; cluster_bits at 20; virtual size at 24; guest clusters at 32; at 40 the
 * image's identity ({@link ImageIdentity}: SHA-256 over the image's header cluster, L1 table and
 * L2 tables), which binds the manifest to the one image it describes; at 72 a CRC32C of bytes
 * 0..71. The header is written last: a manifest still being written has no magic.
 */
public final class Manifest {
  public static final int HEADER_BYTES = 4096;
  public static final int DIGEST_BYTES = 32;
  public static final int VERSION = 1;
  public static final int ALGORITHM_SHA256 = 1;
  static final byte[] MAGIC = "ZCOWDGST".getBytes(StandardCharsets.US_ASCII);
  private static final int CRC_AT = 72;
  private static final byte[] ZERO_DIGEST = new byte[DIGEST_BYTES];

  private Manifest() {}

  /** Where the manifest of {@code image} lives: beside it, {@code IMAGE.digests}. */
  public static Path pathOf(Path image) {
    return image.resolveSibling(image.getFileName() + ".digests");
  }

  /** Where a manifest is built until its image is finished. */
  public static Path partOf(Path image) {
    return image.resolveSibling(image.getFileName() + ".digests.part");
  }

  /** Byte offset of a guest cluster's entry. */
  static long entryOffset(long guestCluster) {
    return HEADER_BYTES + guestCluster * DIGEST_BYTES;
  }

  /** A fresh SHA-256 (one per thread; MessageDigest is not thread safe). */
  public static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no SHA-256", e);
    }
  }

  /** The digest of one whole cluster; the buffer's position is not moved. */
  public static byte[] digest(MessageDigest sha, ByteBuffer cluster) {
    sha.reset();
    sha.update(cluster.duplicate());
    return sha.digest();
  }

  /** True for the entry that marks a cluster reading as zeros. */
  public static boolean isZero(byte[] entry, int offset) {
    return Arrays.equals(entry, offset, offset + DIGEST_BYTES, ZERO_DIGEST, 0, DIGEST_BYTES);
  }

  /** The fields of a manifest's header. */
  public record Header(int clusterBits, long virtualSize, long guestClusters, byte[] identity) {
    public Header {
      if (identity.length != DIGEST_BYTES) {
        throw new IllegalArgumentException("identity must be " + DIGEST_BYTES + " bytes: " + identity.length);
      }
    }

    static Header of(ImageGeometry g, byte[] identity) {
      return new Header(g.clusterBits(), g.virtualSize(), g.guestClusters(), identity);
    }

    ByteBuffer encode() {
      ByteBuffer b = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.BIG_ENDIAN);
      b.put(MAGIC).putInt(VERSION).putInt(ALGORITHM_SHA256).putInt(DIGEST_BYTES).putInt(clusterBits)
          .putLong(virtualSize).putLong(guestClusters).put(identity);
      CRC32C crc = new CRC32C();
      crc.update(b.array(), 0, CRC_AT);
      b.putInt(CRC_AT, (int) crc.getValue());
      return b.clear();
    }

    /**
     * @throws BadInputException naming {@code where} and what is wrong, in one line
     */
    static Header decode(ByteBuffer b, Object where) {
      b.order(ByteOrder.BIG_ENDIAN);
      if (b.remaining() < HEADER_BYTES) {
        throw new BadInputException("digest manifest " + where + " is truncated (" + b.remaining() + " header bytes)");
      }
      byte[] magic = new byte[MAGIC.length];
      b.get(0, magic);
      if (!Arrays.equals(magic, MAGIC)) {
        throw new BadInputException("digest manifest " + where + " has no ZCOWDGST magic (unfinished or not a manifest)");
      }
      CRC32C crc = new CRC32C();
      crc.update(b.duplicate().position(0).limit(CRC_AT));
      if (b.getInt(CRC_AT) != (int) crc.getValue()) {
        throw new BadInputException("digest manifest " + where + " has a damaged header (CRC32C mismatch at 0x48)");
      }
      int version = b.getInt(8);
      int algorithm = b.getInt(12);
      int length = b.getInt(16);
      if (version != VERSION || algorithm != ALGORITHM_SHA256 || length != DIGEST_BYTES) {
        throw new BadInputException("digest manifest " + where + " is version " + version + ", algorithm " + algorithm
            + ", " + length + "-byte digests: this zcow reads version 1, SHA-256 (1), 32 bytes");
      }
      byte[] identity = new byte[DIGEST_BYTES];
      b.get(40, identity);
      return new Header(b.getInt(20), b.getLong(24), b.getLong(32), identity);
    }
  }
}
