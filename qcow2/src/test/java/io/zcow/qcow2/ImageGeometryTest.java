package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ImageGeometryTest {
  private static final long TIB = 1L << 40;

  @Test
  void roundsTheSourceSizeUpTo512() {
    assertEquals(1000448, ImageGeometry.forSource(1000003, 65536).virtualSize());
    assertEquals(512, ImageGeometry.forSource(1, 65536).virtualSize());
    assertEquals(1024, ImageGeometry.forSource(1024, 65536).virtualSize());
    assertEquals(0, ImageGeometry.forSource(0, 65536).virtualSize());
  }

  @Test
  void sixteenTebibytesAreRefusedAt4kClustersWithAClearMessage() {
    BadInputException e = assertThrows(BadInputException.class, () -> ImageGeometry.forSource(16 * TIB, 4096));
    assertTrue(e.getMessage().contains("4 KiB clusters"), e.getMessage());
    assertTrue(e.getMessage().contains("--cluster-size"), e.getMessage());
  }

  @Test
  void sixteenTebibytesAreAcceptedAt64kClusters() {
    ImageGeometry g = ImageGeometry.forSource(16 * TIB, 65536);
    assertEquals(16 * TIB, g.virtualSize());
    assertEquals(1L << 28, g.guestClusters());
    assertEquals(32768, g.l1Size()); // one L2 table per 512 MiB
    assertEquals(4, g.l1Clusters()); // 256 KiB of L1
  }

  @ParameterizedTest
  @ValueSource(ints = {12, 13, 16, 21})
  void maxVirtualSizeStaysWithinQemusL1AndRefcountTableLimits(int bits) {
    long max = ImageGeometry.maxVirtualSize(bits);
    ImageGeometry g = ImageGeometry.forSource(max, 1 << bits);
    assertTrue((long) g.l1Size() * 8 <= ImageGeometry.MAX_L1_BYTES, "L1 within 32 MiB");
    assertTrue((long) g.refcountTableClusters() * g.clusterSize() <= ImageGeometry.MAX_REFTABLE_BYTES,
        "refcount table within 8 MiB");
    assertThrows(BadInputException.class, () -> ImageGeometry.forSource(max + 512, 1 << bits));
  }

  @Test
  void qemuL1LimitCapsFourKibClustersAtEightTebibytes() {
    assertTrue(ImageGeometry.maxVirtualSize(12) <= 8 * TIB);
  }

  @Test
  void refusesClusterSizesOutsideFourKibToTwoMib() {
    assertThrows(BadInputException.class, () -> ImageGeometry.forSource(1 << 20, 2048));
    assertThrows(BadInputException.class, () -> ImageGeometry.forSource(1 << 20, 4 << 20));
    BadInputException e = assertThrows(BadInputException.class, () -> ImageGeometry.forSource(1 << 20, 3000));
    assertTrue(e.getMessage().contains("3000"), e.getMessage());
    assertThrows(BadInputException.class, () -> ImageGeometry.forSource(-1, 65536));
  }

  @Test
  void constructorRefusesVirtualSizesThatAreNotSectorMultiples() {
    assertThrows(IllegalArgumentException.class, () -> new ImageGeometry(16, 1000));
  }

  @Test
  void layoutPutsL1AfterTheHeaderAndTheRefcountTableAfterL1() {
    ImageGeometry g = ImageGeometry.forSource(1L << 30, 65536);
    assertEquals(16384, g.guestClusters());
    assertEquals(8192, g.l2Entries());
    assertEquals(2, g.l1Size());
    assertEquals(1, g.l1Clusters());
    assertEquals(0x10000, g.l1Offset());
    assertEquals(0x20000, g.refcountTableOffset());
    assertEquals(32768, g.refcountBlockEntries());
    assertEquals(1, g.refcountTableClusters());
    assertEquals(3, g.firstFreeCluster());
  }

  @Test
  void partialLastClusterCountsAsAGuestCluster() {
    ImageGeometry g = ImageGeometry.forSource(3 * 4096 + 512, 4096);
    assertEquals(4, g.guestClusters());
    assertEquals(1, g.l2Tables());
  }

  @ParameterizedTest
  @ValueSource(ints = {12, 16, 21})
  void refcountTableCoversTheWorstCaseFile(int bits) {
    for (long size : new long[] {0, 512, 1L << 30, ImageGeometry.maxVirtualSize(bits)}) {
      ImageGeometry g = new ImageGeometry(bits, size);
      long covered = (long) g.refcountTableEntries() * g.refcountBlockEntries();
      assertTrue(covered >= g.worstCaseHostClusters(), "size " + size);
      assertTrue(g.worstCaseHostClusters() >= 2 * g.guestClusters() + g.l2Tables(), "size " + size);
      assertEquals(g.refcountTableOffset() / g.clusterSize() + g.refcountTableClusters(), g.firstFreeCluster());
    }
  }
}
