package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageWriterSmokeTest {
  @TempDir Path dir;

  static int run(String... cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).inheritIO().start();
    return p.waitFor();
  }

  @Test
  void smoke() throws Exception {
    Path raw = dir.resolve("disk.raw");
    byte[] data = new byte[10 * 1024 * 1024 + 1000];
    Random r = new Random(1);
    for (int i = 0; i < data.length; i++) {
      int region = (i / 65536) % 4;
      data[i] = switch (region) {
        case 0 -> (byte) 'a';
        case 1 -> (byte) r.nextInt();
        case 2 -> 0;
        default -> (byte) ("hello world " + (i / 100)).charAt(i % 10);
      };
    }
    Files.write(raw, data);
    for (int cs : new int[] {4096, 65536, 2 << 20}) {
      Path img = dir.resolve("out-" + cs + ".qcow2");
      ImageGeometry g = ImageGeometry.forSource(data.length, cs);
      ImageOptions o = ImageOptions.defaults(g).withRangeBytes(Math.max(cs, 1 << 20)).withCacheBytes(Math.max(8L * cs, 1 << 20));
      ImageWriter w = ImageWriter.create(img, o);
      ImageFeeder.feed(w, ImageFeeder.entries(raw, cs, 3), 42, 3);
      w.finish();
      assertEquals(0, run("qemu-img", "check", img.toString()), "check " + cs);
      assertEquals(0, run("qemu-img", "compare", "-f", "raw", "-F", "qcow2", raw.toString(), img.toString()), "compare " + cs);
    }
  }
}
