package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.CorruptException;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class L2EntryTest {

  @Test
  void compressedShiftFollowsClusterBits() {
    assertEquals(58, L2Entry.compressedShift(12));
    assertEquals(54, L2Entry.compressedShift(16));
    assertEquals(49, L2Entry.compressedShift(21));
  }

  @Test
  void encodesOffsetAndAdditionalSectorsAt64k() {
    // 1000 bytes from a sector boundary touch two sectors: one additional.
    long e = L2Entry.compressed(0x50200, 1000, 16);
    assertEquals(L2Entry.COMPRESSED | (1L << 54) | 0x50200, e);
    assertEquals(0x50200, L2Entry.compressedOffset(e, 16));
    assertEquals(1024, L2Entry.compressedReadLength(e, 16));
  }

  @Test
  void payloadWithinOneSectorHasNoAdditionalSectors() {
    long e = L2Entry.compressed(0x1234, 100, 16);
    assertEquals(L2Entry.COMPRESSED | 0x1234, e);
    // Read from the offset to the end of its sector.
    assertEquals(512 - 0x34, L2Entry.compressedReadLength(e, 16));
  }

  @Test
  void payloadCrossingASectorBoundaryCountsTheNextSector() {
    long e = L2Entry.compressed(500, 20, 16); // bytes 500..519
    assertEquals(1, sectors(e, 16));
    assertEquals(1024 - 500, L2Entry.compressedReadLength(e, 16));
    long exact = L2Entry.compressed(500, 12, 16); // bytes 500..511: still one sector
    assertEquals(0, sectors(exact, 16));
  }

  @ParameterizedTest
  @ValueSource(ints = {12, 16, 21})
  void payloadCrossingAClusterBoundaryCountsSectorsIntoTheNextCluster(int bits) {
    long cs = 1L << bits;
    long offset = 7 * cs - 10;
    long e = L2Entry.compressed(offset, 100, bits);
    assertEquals(offset, L2Entry.compressedOffset(e, bits));
    assertEquals(1, sectors(e, bits));
    assertTrue(offset + L2Entry.compressedReadLength(e, bits) >= offset + 100);
  }

  @ParameterizedTest
  @ValueSource(ints = {12, 16, 21})
  void longestPayloadAtTheWorstOffsetStillFits(int bits) {
    int cs = 1 << bits;
    long e = L2Entry.compressed(511, cs - 1, bits); // touches cs/512 + 1 sectors
    assertEquals(cs / 512, sectors(e, bits));
    assertEquals(511, L2Entry.compressedOffset(e, bits));
    // From byte 511 to the end of sector cs/512: one byte of the first sector plus cs more.
    assertEquals(cs + 1, L2Entry.compressedReadLength(e, bits));
  }

  @ParameterizedTest
  @ValueSource(ints = {12, 16, 21})
  void roundTripsRandomPayloads(int bits) {
    SplittableRandom rnd = new SplittableRandom(bits);
    long max = L2Entry.maxCompressedOffset(bits);
    for (int i = 0; i < 100_000; i++) {
      long offset = rnd.nextLong(max - (1 << bits));
      int length = 1 + rnd.nextInt((1 << bits) - 1);
      long e = L2Entry.compressed(offset, length, bits);
      assertTrue(L2Entry.isCompressed(e));
      assertEquals(0, e & L2Entry.COPIED, "never the copied bit on a compressed entry");
      assertEquals(offset, L2Entry.compressedOffset(e, bits));
      long end = offset + L2Entry.compressedReadLength(e, bits);
      assertEquals(0, end % 512, "the read ends on a sector boundary");
      assertTrue(end >= offset + length && end < offset + length + 512, "covers the payload and no extra sector");
    }
  }

  @Test
  void offsetsAtTheMaximumEncodeAndOneMoreIsRefused() {
    // 2 MiB clusters: x = 49, so compressed payloads live below 512 TiB.
    assertEquals(1L << 49, L2Entry.maxCompressedOffset(21));
    long top21 = (1L << 49) - 1;
    assertEquals(top21, L2Entry.compressedOffset(L2Entry.compressed(top21, 1, 21), 21));
    assertThrows(IllegalArgumentException.class, () -> L2Entry.compressed(1L << 49, 1, 21));

    long top16 = (1L << 54) - 1;
    assertEquals(top16, L2Entry.compressedOffset(L2Entry.compressed(top16, 1, 16), 16));
    assertThrows(IllegalArgumentException.class, () -> L2Entry.compressed(1L << 54, 1, 16));

    // 4 KiB clusters: x = 58, but offset bits beyond 55 must stay zero (qcow2.txt).
    assertEquals(1L << 56, L2Entry.maxCompressedOffset(12));
    long top12 = (1L << 56) - 1;
    assertEquals(top12, L2Entry.compressedOffset(L2Entry.compressed(top12, 1, 12), 12));
    assertThrows(IllegalArgumentException.class, () -> L2Entry.compressed(1L << 56, 1, 12));
  }

  @Test
  void refusesEmptyPayloadsAndNegativeOffsets() {
    assertThrows(IllegalArgumentException.class, () -> L2Entry.compressed(0x1000, 0, 16));
    assertThrows(IllegalArgumentException.class, () -> L2Entry.compressed(-1, 10, 16));
  }

  @Test
  void standardEntryCarriesOffsetAndCopiedBit() {
    long e = L2Entry.standard(0x7_0000);
    assertEquals(0x7_0000 | L2Entry.COPIED, e);
    assertFalse(L2Entry.isCompressed(e));
    assertEquals(0x7_0000, L2Entry.standardOffset(e, 0x3_0000));
    // The zero flag is not a reserved bit.
    assertEquals(0x7_0000, L2Entry.standardOffset(e | L2Entry.ZERO, 0x3_0000));
  }

  @Test
  void standardEntryRefusesUnalignedOrTooLargeOffsets() {
    assertThrows(IllegalArgumentException.class, () -> L2Entry.standard(0x7_0001));
    assertThrows(IllegalArgumentException.class, () -> L2Entry.standard(1L << 56));
    assertThrows(IllegalArgumentException.class, () -> L2Entry.standard(-512));
  }

  @Test
  void reservedBitsOfAStandardEntryAreCorruptionNamingTheEntry() {
    for (long bit : new long[] {1L << 1, 1L << 8, 1L << 56, 1L << 61}) {
      CorruptException e = assertThrows(CorruptException.class,
          () -> L2Entry.standardOffset(L2Entry.standard(0x10000) | bit, 0x30008));
      assertTrue(e.getMessage().contains("0x30008"), e.getMessage());
      assertTrue(e.getMessage().contains("reserved"), e.getMessage());
    }
  }

  @Test
  void l1EntryYieldsItsL2OffsetAndRefusesReservedBits() {
    assertEquals(0x20000, L2Entry.l2TableOffset(0x20000 | L2Entry.COPIED, 0x10000));
    assertEquals(0, L2Entry.l2TableOffset(0, 0x10000));
    for (long bit : new long[] {1L, 1L << 8, 1L << 56, 1L << 62}) {
      CorruptException e = assertThrows(CorruptException.class,
          () -> L2Entry.l2TableOffset(0x20000 | bit, 0x10018));
      assertTrue(e.getMessage().contains("0x10018"), e.getMessage());
    }
  }

  private static long sectors(long entry, int bits) {
    return (entry >>> L2Entry.compressedShift(bits)) & ((1L << (bits - 8)) - 1);
  }
}
