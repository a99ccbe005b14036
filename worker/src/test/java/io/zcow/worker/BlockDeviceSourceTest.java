package io.zcow.worker;

import io.zcow.testkit.LoopDevice;
import io.zcow.testkit.TestData;
import io.zcow.source.Source;
import io.zcow.source.FileSource;
import io.zcow.source.SourceCache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.io.Aligned;
import io.zcow.qcow2.ImageGeometry;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real block device: a loop device over a file. Needs root and loop devices (losetup); skipped
 * with the reason where the sandbox has neither.
 */
class BlockDeviceSourceTest {
  /** Not a multiple of 4096: the device's last block is partial for O_DIRECT reads. */
  private static final int SIZE = (8 << 20) + 512;

  @TempDir Path dir;
  private LoopDevice loop;

  @AfterEach
  void detach() {
    if (loop != null) {
      loop.close();
    }
  }

  @Test
  void readsSizeContentAndClustersOfABlockDevice() throws Exception {
    Path backing = TestData.sparse(dir.resolve("backing.img"), 0);
    byte[] content = new byte[SIZE];
    System.arraycopy(TestData.compressible(1, 3 << 20), 0, content, 0, 3 << 20);
    System.arraycopy(TestData.random(2, 1 << 20), 0, content, 5 << 20, 1 << 20);
    content[SIZE - 1] = 42;
    TestData.write(backing, 0, content);
    loop = LoopDevice.attach(backing);

    try (FileSource s = FileSource.open(loop.path(), SourceCache.AUTO)) {
      assertEquals(SIZE, s.size(), "size through the channel, not Files.size (0 for devices)");
      assertTrue(s.describe().startsWith("block device " + loop.path()), s.describe());
      assertTrue(s.isDirect(), "devices take O_DIRECT: " + s.describe());
      ByteBuffer all = Aligned.allocate(SIZE + 3584, 4096);
      assertEquals(SIZE, s.read(all, 0));
      byte[] got = new byte[SIZE];
      all.get(got);
      assertArrayEquals(content, got);

      int cs = 65536;
      ImageGeometry g = ImageGeometry.forSource(s.size(), cs);
      RecordingSink sink = new RecordingSink();
      try (RangeCompressor rc = new RangeCompressor(s, g, 3)) {
        RangeStats stats = rc.compress(0, g.guestClusters(), sink);
        assertEquals(16, stats.rawClusters(), "the random MiB");
        assertEquals(SIZE, stats.bytesRead(), "a device has no holes to skip");
      }
      byte[] padded = new byte[(int) g.guestClusters() * cs];
      System.arraycopy(content, 0, padded, 0, SIZE);
      assertArrayEquals(padded, sink.decode(cs, 0, g.guestClusters()));
    }
  }
}
