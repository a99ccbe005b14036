package io.zcow.source.nbd;

import io.zcow.testkit.QemuImg;
import io.zcow.testkit.TestData;
import java.nio.file.Path;

/**
 * The disks the NBD tests export: a sparse raw file with three 1 MiB data runs (the last one
 * ending at an odd size) and its zstd qcow2 conversion, whose unallocated clusters qemu-nbd
 * reports as zero extents.
 */
record NbdImages(Path raw, Path qcow2, byte[] content) {
  static final int MIB = 1 << 20;
  static final long SIZE = 48L * MIB + 4096;
  static final long[] DATA = {8L * MIB, 20L * MIB + 64 * 1024, SIZE - 4096};
  static final int DATA_LENGTH = MIB;

  static NbdImages create(Path dir) {
    QemuImg.assumeAvailable();
    Path raw = TestData.sparse(dir.resolve("disk.raw"), SIZE);
    byte[] content = new byte[(int) SIZE];
    for (int i = 0; i < DATA.length; i++) {
      int n = (int) Math.min(DATA_LENGTH, SIZE - DATA[i]);
      byte[] d = TestData.random(i + 1, n);
      TestData.write(raw, DATA[i], d);
      System.arraycopy(d, 0, content, (int) DATA[i], n);
    }
    Path qcow2 = dir.resolve("disk.qcow2");
    QemuImg.convert(raw, qcow2, "zstd", 64 * 1024);
    return new NbdImages(raw, qcow2, content);
  }
}
