package io.zcow.qcow2;

import io.zcow.CorruptException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The qcow2 version 3 header (qcow2.txt, "Header"), big-endian. zcow writes 112 bytes (as QEMU
 * does), no snapshots, no encryption, 16-bit refcounts, and ends the header extensions with a
 * zero type right after it; an overlay adds the backing-format extension before that end and the
 * backing file name after it ({@link #encode(BackingFile)}).
 */
public record Header(
    int version,
    int clusterBits,
    long virtualSize,
    int l1Size,
    long l1TableOffset,
    long refcountTableOffset,
    int refcountTableClusters,
    long incompatibleFeatures,
    long compatibleFeatures,
    long autoclearFeatures,
    int refcountOrder,
    int headerLength,
    Codec codec,
    long backingFileOffset,
    int nbSnapshots) {

  public static final int MAGIC = 0x514649fb; // "QFI\xfb"
  public static final long INCOMPAT_DIRTY = 1L;
  public static final long INCOMPAT_CORRUPT = 1L << 1;
  public static final long INCOMPAT_EXTERNAL_DATA = 1L << 2;
  public static final long INCOMPAT_COMPRESSION_TYPE = 1L << 3;
  public static final long INCOMPAT_EXTENDED_L2 = 1L << 4;
  /** The header length QEMU writes for version 3 with a compression type byte (104 + padding). */
  public static final int V3_LENGTH = 112;

  /** The header of an image zcow writes with this geometry. */
  public static Header forImage(ImageGeometry g, Codec codec) {
    return new Header(
        3,
        g.clusterBits(),
        g.virtualSize(),
        g.l1Size(),
        g.l1Offset(),
        g.refcountTableOffset(),
        g.refcountTableClusters(),
        // Bit 3 must be set exactly when the compression type is not zlib.
        codec == Codec.ZLIB ? 0 : INCOMPAT_COMPRESSION_TYPE,
        0,
        0,
        ImageGeometry.REFCOUNT_ORDER,
        V3_LENGTH,
        codec,
        0,
        0);
  }

  /** The header followed by the end-of-extensions marker: {@link #V3_LENGTH} + 8 bytes. */
  public ByteBuffer encode() {
    ByteBuffer b = ByteBuffer.allocate(V3_LENGTH + 8).order(ByteOrder.BIG_ENDIAN);
    b.putInt(0, MAGIC);
    b.putInt(4, version);
    b.putLong(8, backingFileOffset);
    b.putInt(16, 0); // backing_file_size
    b.putInt(20, clusterBits);
    b.putLong(24, virtualSize);
    b.putInt(32, 0); // crypt_method
    b.putInt(36, l1Size);
    b.putLong(40, l1TableOffset);
    b.putLong(48, refcountTableOffset);
    b.putInt(56, refcountTableClusters);
    b.putInt(60, nbSnapshots);
    b.putLong(64, 0); // snapshots_offset
    b.putLong(72, incompatibleFeatures);
    b.putLong(80, compatibleFeatures);
    b.putLong(88, autoclearFeatures);
    b.putInt(96, refcountOrder);
    b.putInt(100, headerLength);
    b.put(104, (byte) codec.headerValue);
    // 105..111 padding, then the header extension end marker (type 0, length 0) at 112..119.
    return b;
  }

  /**
   * The header of an overlay: {@link #encode()} with backing_file_offset and backing_file_size
   * set, the backing-format extension, the end marker and the name, all inside the first cluster.
   * A null {@code backing} gives {@link #encode()}.
   */
  public ByteBuffer encode(BackingFile backing) {
    if (backing == null) {
      return encode();
    }
    ByteBuffer plain = encode();
    ByteBuffer b = ByteBuffer.allocate(V3_LENGTH + 24 + backing.nameBytes()).order(ByteOrder.BIG_ENDIAN);
    b.put(plain.array(), 0, V3_LENGTH);
    int nameOffset = backing.appendExtensionsAndName(b);
    b.putLong(8, nameOffset);
    b.putInt(16, backing.nameBytes());
    return b.clear();
  }

  /**
   * Decodes a header from the first bytes of an image (72 for version 2; for version 3, 104 and
   * the compression type byte at 104 when header_length covers it: 112 in practice). Refuses what
   * zcow cannot read: versions other than 2 and 3, unknown incompatible features, external data,
   * extended L2 entries, encryption, a compression type that disagrees with incompatible bit 3.
   * Messages name the header offset of the offending field.
   */
  public static Header decode(ByteBuffer src) {
    ByteBuffer b = src.duplicate().order(ByteOrder.BIG_ENDIAN);
    int p = b.position();
    if (b.remaining() < 72) {
      throw new CorruptException("image is too short for a qcow2 header (" + b.remaining() + " bytes at 0x0)");
    }
    int magic = b.getInt(p);
    if (magic != MAGIC) {
      throw new CorruptException(String.format("bad qcow2 magic 0x%08x at offset 0x0", magic));
    }
    int version = b.getInt(p + 4);
    if (version != 2 && version != 3) {
      throw new CorruptException("unsupported qcow2 version " + version + " at offset 0x4");
    }
    int clusterBits = b.getInt(p + 20);
    if (clusterBits < 9 || clusterBits > 21) {
      throw new CorruptException("invalid cluster_bits " + clusterBits + " at offset 0x14");
    }
    if (b.getInt(p + 32) != 0) {
      throw new CorruptException("encrypted images are not supported (crypt_method at offset 0x20)");
    }
    long incompatible = 0;
    long compatible = 0;
    long autoclear = 0;
    int refcountOrder = 4;
    int headerLength = 72;
    Codec codec = Codec.ZLIB;
    if (version == 3) {
      if (b.remaining() < 104) {
        throw new CorruptException("image is too short for a qcow2 v3 header (" + b.remaining() + " bytes at 0x0)");
      }
      incompatible = b.getLong(p + 72);
      compatible = b.getLong(p + 80);
      autoclear = b.getLong(p + 88);
      refcountOrder = b.getInt(p + 96);
      headerLength = b.getInt(p + 100);
      if (headerLength < 104 || headerLength > (1 << clusterBits)) {
        throw new CorruptException("invalid header_length " + headerLength + " at offset 0x64");
      }
      long known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION_TYPE;
      if ((incompatible & ~known) != 0) {
        throw new CorruptException(String.format(
            "unsupported incompatible features 0x%x at offset 0x48%s", incompatible & ~known,
            describe(incompatible & ~known)));
      }
      codec = compressionType(b, p, headerLength, incompatible);
      if (refcountOrder < 0 || refcountOrder > 6) {
        throw new CorruptException("invalid refcount_order " + refcountOrder + " at offset 0x60");
      }
    }
    return new Header(
        version,
        clusterBits,
        b.getLong(p + 24),
        b.getInt(p + 36),
        b.getLong(p + 40),
        b.getLong(p + 48),
        b.getInt(p + 56),
        incompatible,
        compatible,
        autoclear,
        refcountOrder,
        headerLength,
        codec,
        b.getLong(p + 8),
        b.getInt(p + 60));
  }

  /**
   * The compression_type byte counts whenever the header is long enough to hold it, and must agree
   * with incompatible bit 3 both ways (qcow2.txt; QEMU refuses either mismatch). Reading the byte
   * only when the bit is set would decode a zstd image with the bit cleared as zlib.
   */
  private static Codec compressionType(ByteBuffer b, int p, int headerLength, long incompatible) {
    int value = 0;
    if (headerLength > 104) {
      if (b.remaining() < 105) {
        throw new CorruptException("image is too short for its header_length " + headerLength + " (at offset 0x64)");
      }
      value = b.get(p + 104) & 0xff;
    }
    boolean bit = (incompatible & INCOMPAT_COMPRESSION_TYPE) != 0;
    if (bit != (value != 0)) {
      throw new CorruptException("compression_type " + value + " at offset 0x68 disagrees with incompatible"
          + " feature bit 3 (" + (bit ? "set" : "clear") + ") at offset 0x48");
    }
    if (value > Codec.ZSTD.headerValue) {
      throw new CorruptException("unknown compression_type " + value + " at offset 0x68");
    }
    return Codec.fromHeaderValue(value);
  }

  private static String describe(long unknownIncompatible) {
    if ((unknownIncompatible & INCOMPAT_EXTERNAL_DATA) != 0) {
      return " (external data file: not supported)";
    }
    if ((unknownIncompatible & INCOMPAT_EXTENDED_L2) != 0) {
      return " (extended L2 entries: not supported)";
    }
    return "";
  }

  public int clusterSize() {
    return 1 << clusterBits;
  }
}
