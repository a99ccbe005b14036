package io.zcow.source;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class DirtyClustersTest {
  private static final int CS = 65536;

  @Test
  void roundsExtentsOutToClustersAndMergesTouchingRuns() {
    DirtyClusters d = DirtyClusters.builder(10L * CS + 512, CS)
        .add(100, 10)                 // cluster 0
        .add(CS - 1, 2)               // 0 and 1: merged
        .add(2L * CS, CS)             // 2: touches 0..1, merged
        .add(5L * CS + 4096, 4096)    // 5
        .add(10L * CS, 1 << 20)       // the partial last cluster 10, cut at the source's end
        .build();
    assertEquals("DirtyClusters[0..2, 5..5, 10..10]", d.toString());
    assertEquals(5, d.count());
    assertEquals(11, d.clusters());
    assertTrue(d.isDirty(2));
    assertFalse(d.isDirty(3));
  }

  @Test
  void findsTheNextDirtyAndTheNextCleanCluster() {
    DirtyClusters d = DirtyClusters.builder(20L * CS, CS).add(3L * CS, 2L * CS).add(10L * CS, CS).build();
    assertEquals(3, d.nextDirty(0));
    assertEquals(4, d.nextDirty(4));
    assertEquals(10, d.nextDirty(5));
    assertEquals(20, d.nextDirty(11));
    assertEquals(0, d.nextClean(0));
    assertEquals(5, d.nextClean(3));
    assertEquals(11, d.nextClean(10));
  }

  @Test
  void coarsenedMergesTheRunsWithTheSmallestGapsAndLosesNoChange() {
    // Runs 0, 2..3, 10, 30, 31 is merged into 30: gaps 1, 6, 19.
    DirtyClusters d = DirtyClusters.builder(40L * CS, CS).add(0, 1).add(2L * CS, 2L * CS).add(10L * CS, 1)
        .add(30L * CS, 2L * CS).build();
    assertEquals(4, d.runs());
    assertSame(d, d.coarsened(4));
    DirtyClusters three = d.coarsened(3);
    assertEquals("DirtyClusters[0..3, 10..10, 30..31]", three.toString());
    assertEquals("DirtyClusters[0..10, 30..31]", d.coarsened(2).toString());
    assertEquals("DirtyClusters[0..31]", d.coarsened(1).toString());
    for (long c = 0; c < 40; c++) {
      if (d.isDirty(c)) {
        assertTrue(d.coarsened(1).isDirty(c) && d.coarsened(2).isDirty(c) && three.isDirty(c), "cluster " + c);
      }
    }
    assertThrows(IllegalArgumentException.class, () -> d.coarsened(0));
  }

  @Test
  void refusesExtentsOutOfOrder() {
    DirtyClusters.Builder b = DirtyClusters.builder(20L * CS, CS).add(5L * CS, 1);
    assertThrows(IllegalArgumentException.class, () -> b.add(0, 1));
    assertThrows(IllegalArgumentException.class, () -> DirtyClusters.builder(CS, 3000));
  }
}
