package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.CorruptException;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

class HeaderTest {
  private static final ImageGeometry GEOMETRY = ImageGeometry.forSource(10L << 30, 64 << 10);

  @ParameterizedTest
  @EnumSource(Codec.class)
  void encodeThenDecodeGivesTheSameHeader(Codec codec) {
    Header h = Header.forImage(GEOMETRY, codec);
    assertEquals(h, Header.decode(h.encode()));
  }

  @Test
  void encodesFieldsWhereQcow2TxtPutsThem() {
    Header h = Header.forImage(GEOMETRY, Codec.ZSTD);
    ByteBuffer b = h.encode();
    assertEquals(Header.V3_LENGTH + 8, b.remaining());
    assertEquals(0x514649fb, b.getInt(0));
    assertEquals(3, b.getInt(4));
    assertEquals(16, b.getInt(20));
    assertEquals(10L << 30, b.getLong(24));
    assertEquals(GEOMETRY.l1Size(), b.getInt(36));
    assertEquals(GEOMETRY.l1Offset(), b.getLong(40));
    assertEquals(GEOMETRY.refcountTableOffset(), b.getLong(48));
    assertEquals(GEOMETRY.refcountTableClusters(), b.getInt(56));
    assertEquals(4, b.getInt(96));
    assertEquals(112, b.getInt(100));
    assertEquals(1, b.get(104));
    // End of header extensions: type 0, length 0, right after the header.
    assertEquals(0L, b.getLong(112));
  }

  @Test
  void compressionTypeBitIsSetExactlyForZstd() {
    Header zstd = Header.forImage(GEOMETRY, Codec.ZSTD);
    Header zlib = Header.forImage(GEOMETRY, Codec.ZLIB);
    assertEquals(Header.INCOMPAT_COMPRESSION_TYPE, zstd.incompatibleFeatures());
    assertEquals(0, zlib.incompatibleFeatures());
    assertEquals(1, zstd.encode().get(104));
    assertEquals(0, zlib.encode().get(104));
    assertEquals(Codec.ZSTD, Header.decode(zstd.encode()).codec());
    assertEquals(Codec.ZLIB, Header.decode(zlib.encode()).codec());
  }

  @Test
  void badMagicIsRefusedAtOffsetZero() {
    ByteBuffer b = Header.forImage(GEOMETRY, Codec.ZSTD).encode();
    b.putInt(0, 0x12345678);
    assertCorrupt(b, "0x0", "magic");
  }

  @Test
  void unsupportedVersionIsRefusedAtOffset4() {
    ByteBuffer b = Header.forImage(GEOMETRY, Codec.ZSTD).encode();
    b.putInt(4, 4);
    assertCorrupt(b, "0x4", "version 4");
    b.putInt(4, 1);
    assertCorrupt(b, "0x4", "version 1");
  }

  @Test
  void unknownIncompatibleBitsAreRefusedAtOffset0x48() {
    ByteBuffer b = Header.forImage(GEOMETRY, Codec.ZSTD).encode();
    b.putLong(72, Header.INCOMPAT_COMPRESSION_TYPE | (1L << 5));
    assertCorrupt(b, "0x48", "0x20");
    b.putLong(72, Header.INCOMPAT_COMPRESSION_TYPE | (1L << 63));
    assertCorrupt(b, "0x48", "0x8000000000000000");
  }

  @Test
  void externalDataAndExtendedL2AreRefusedByName() {
    ByteBuffer b = Header.forImage(GEOMETRY, Codec.ZSTD).encode();
    b.putLong(72, Header.INCOMPAT_COMPRESSION_TYPE | Header.INCOMPAT_EXTERNAL_DATA);
    assertCorrupt(b, "0x48", "external data");
    b.putLong(72, Header.INCOMPAT_COMPRESSION_TYPE | Header.INCOMPAT_EXTENDED_L2);
    assertCorrupt(b, "0x48", "extended L2");
  }

  @Test
  void encryptionIsRefused() {
    ByteBuffer b = Header.forImage(GEOMETRY, Codec.ZSTD).encode();
    b.putInt(32, 2); // LUKS
    assertCorrupt(b, "0x20", "encrypted");
  }

  @ParameterizedTest
  @ValueSource(ints = {-1, 7, Integer.MIN_VALUE})
  void refcountOrderOutsideZeroToSixIsRefused(int order) {
    // A negative order once gave 1 << order refcount bits and a division by zero in ImageCheck.
    ByteBuffer b = Header.forImage(GEOMETRY, Codec.ZSTD).encode();
    b.putInt(96, order);
    assertCorrupt(b, "0x60", "refcount_order");
  }

  @Test
  void zstdTypeWithoutItsIncompatibleBitIsRefused() {
    // Read as zlib, every compressed cluster would fail; QEMU refuses the header instead.
    ByteBuffer b = Header.forImage(GEOMETRY, Codec.ZSTD).encode();
    b.putLong(72, 0);
    assertCorrupt(b, "0x68", "bit 3");
  }

  @Test
  void incompatibleBitWithZlibTypeIsRefused() {
    ByteBuffer b = Header.forImage(GEOMETRY, Codec.ZLIB).encode();
    b.putLong(72, Header.INCOMPAT_COMPRESSION_TYPE);
    assertCorrupt(b, "0x68", "bit 3");
  }

  @Test
  void unknownCompressionTypeIsRefused() {
    ByteBuffer b = Header.forImage(GEOMETRY, Codec.ZSTD).encode();
    b.put(104, (byte) 7);
    assertCorrupt(b, "0x68", "compression_type 7");
  }

  @Test
  void headerShorterThanVersion3AllowsIsRefused() {
    ByteBuffer b = Header.forImage(GEOMETRY, Codec.ZLIB).encode();
    b.putInt(100, 72);
    assertCorrupt(b, "0x64", "header_length 72");
  }

  @Test
  void truncatedHeaderIsRefused() {
    ByteBuffer b = Header.forImage(GEOMETRY, Codec.ZSTD).encode().limit(40);
    assertCorrupt(b, "0x0", "too short");
  }

  @Test
  void version2HeaderDecodesAsZlibWith16BitRefcounts() {
    ByteBuffer b = ByteBuffer.allocate(72);
    b.putInt(0, Header.MAGIC).putInt(4, 2).putInt(20, 16).putLong(24, 1L << 30);
    b.putInt(36, 2).putLong(40, 0x30000).putLong(48, 0x10000).putInt(56, 1);
    Header h = Header.decode(b);
    assertEquals(2, h.version());
    assertEquals(Codec.ZLIB, h.codec());
    assertEquals(4, h.refcountOrder());
    assertEquals(72, h.headerLength());
    assertEquals(0x30000, h.l1TableOffset());
  }

  private static void assertCorrupt(ByteBuffer b, String... fragments) {
    CorruptException e = assertThrows(CorruptException.class, () -> Header.decode(b));
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "'" + e.getMessage() + "' should contain '" + f + "'");
    }
  }
}
