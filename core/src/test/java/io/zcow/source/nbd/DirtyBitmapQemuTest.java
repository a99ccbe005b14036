package io.zcow.source.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.source.DirtyClusters;
import io.zcow.testkit.NbdServer;
import io.zcow.testkit.QemuImg;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link DirtyBitmap} against qemu-nbd {@code -B NAME} on a qcow2 image with a persistent bitmap,
 * changed with qemu-io while no server holds it (qemu-nbd takes the image lock).
 */
class DirtyBitmapQemuTest {
  private static final int CS = 65536;
  private static final long SIZE = 8L << 20;
  @TempDir Path dir;

  private static NbdOptions fast() {
    return NbdOptions.defaults().withTimeouts(Duration.ofSeconds(5), Duration.ofSeconds(5), Duration.ofSeconds(20));
  }

  private Path guest(int granularity) {
    Path img = dir.resolve("guest-" + granularity + ".qcow2");
    QemuImg.create(img, SIZE, CS);
    QemuImg.io(img, "write -P 0x5a 0 8M"); // before the bitmap: clean
    QemuImg.addBitmap(img, "b0", granularity);
    return img;
  }

  private static List<Long> clusters(DirtyClusters d) {
    List<Long> out = new ArrayList<>();
    for (int i = 0; i < d.runs(); i++) {
      for (long c = d.runStart(i); c < d.runEnd(i); c++) {
        out.add(c);
      }
    }
    return out;
  }

  @Test
  void listsDataZeroWritesDiscardsTheLastClusterAndSmallWritesAsWholeClusters() {
    Path img = guest(CS);
    QemuImg.io(img,
        "write -P 0xcc 1M 128k",       // clusters 16, 17
        "write -z 3M 64k",             // 48
        "discard 5M 64k",              // 80
        "write -P 0x22 6295552 4096",  // 6M + 4k: 96, smaller than a cluster
        "write -P 0x11 8388096 512");  // the last sector: 127
    try (NbdServer s = NbdServer.qemuNbd(img, "qcow2").bitmap("b0").start()) {
      DirtyClusters d = DirtyBitmap.read(NbdUri.parse(s.uri()), fast(), "b0", CS);
      assertEquals(List.of(16L, 17L, 48L, 80L, 96L, 127L), clusters(d), d.toString());
      assertEquals(6, d.count());
      assertEquals(128, d.clusters());
      assertTrue(d.isDirty(17));
      assertFalse(d.isDirty(18));
      assertFalse(d.isDirty(0));
    }
  }

  @Test
  void roundsTheGranularityOutToWholeClusters() {
    Path img = guest(16384);
    QemuImg.io(img, "write -P 0xcc 65536 4096", "write -P 0xcc 2M 4096");
    try (NbdServer s = NbdServer.qemuNbd(img, "qcow2").bitmap("b0").start()) {
      NbdUri uri = NbdUri.parse(s.uri());
      // 64 KiB clusters: one cluster per write.
      assertEquals(List.of(1L, 32L), clusters(DirtyBitmap.read(uri, fast(), "b0", CS)));
      // 4 KiB clusters: the whole 16 KiB granule of each write, four clusters.
      assertEquals(List.of(16L, 17L, 18L, 19L, 512L, 513L, 514L, 515L),
          clusters(DirtyBitmap.read(uri, fast(), "b0", 4096)));
    }
  }

  @Test
  void aBitmapWithNoChangesListsNothing() {
    Path img = guest(CS);
    try (NbdServer s = NbdServer.qemuNbd(img, "qcow2").bitmap("b0").start()) {
      DirtyClusters d = DirtyBitmap.read(NbdUri.parse(s.uri()), fast(), "b0", CS);
      assertEquals(0, d.runs(), d.toString());
    }
  }

  @Test
  void refusesABitmapTheExportDoesNotHave() {
    Path img = guest(CS);
    try (NbdServer s = NbdServer.qemuNbd(img, "qcow2").bitmap("b0").start()) {
      BadInputException e = assertThrows(BadInputException.class,
          () -> DirtyBitmap.read(NbdUri.parse(s.uri()), fast(), "other", CS));
      assertTrue(e.getMessage().contains("no dirty bitmap other"), e.getMessage());
      assertFalse(e.getMessage().contains("\n"));
    }
  }
}
