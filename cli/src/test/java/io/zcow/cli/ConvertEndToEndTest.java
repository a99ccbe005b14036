package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code zcow convert} on generated disks; every image checked by the real qemu-img: check finds
 * no errors and no leaks, compare finds it identical to the source.
 */
class ConvertEndToEndTest {
  @TempDir Path dir;

  private Path convert(Path src, String... options) {
    Path target = dir.resolve(src.getFileName() + ".qcow2");
    String[] args = new String[options.length + 5];
    args[0] = "convert";
    System.arraycopy(options, 0, args, 1, options.length);
    args[options.length + 1] = "--progress";
    args[options.length + 2] = "none";
    args[options.length + 3] = src.toString();
    args[options.length + 4] = target.toString();
    CliRun run = CliRun.of(args);
    assertEquals(0, run.exitCode(), run.err());
    assertFalse(Files.exists(dir.resolve(target.getFileName() + ".part")));
    return target;
  }

  private void assertGood(Path src, Path image) {
    QemuImg.assertClean(image);
    QemuImg.assertIdentical(src, image);
  }

  @ParameterizedTest(name = "{0} at cluster size {1}")
  @CsvSource({
    "ext4, 64k", "ext4, 4k", "ext4, 2m",
    "repeated, 64k", "repeated, 4k", "repeated, 2m",
    "random, 64k", "random, 2m",
    "alternating, 64k", "alternating, 4k",
    "sparse-odd, 64k", "sparse-odd, 2m",
  })
  void convertsGeneratedDisk(String kind, String clusterSize) throws IOException {
    QemuImg.assumeAvailable();
    Path src = dir.resolve(kind + ".raw");
    int cs = (int) SizeValue.parse(clusterSize).bytes();
    switch (kind) {
      case "ext4" -> Disks.ext4(src, 96L << 20);
      case "repeated" -> Disks.repeatedByte(src, 40L << 20, (byte) 1);
      case "random" -> Disks.random(src, 12L << 20, 3);
      case "alternating" -> Disks.alternating(src, 20L << 20, cs, 4);
      // Not a multiple of the cluster size, nor of 512.
      case "sparse-odd" -> Disks.sparse(src, (300L << 20) + 4321, 5, 0, 5L << 20, 77L << 20, 300L << 20);
      default -> throw new IllegalArgumentException(kind);
    }
    assertGood(src, convert(src, "--cluster-size", clusterSize, "--threads", "2"));
  }

  @Test
  void oneSectorDisk() throws IOException {
    QemuImg.assumeAvailable();
    Path src = dir.resolve("sector.raw");
    Files.writeString(src, "zcow".repeat(128));
    assertGood(src, convert(src));
  }

  @Test
  void oddSizedDiskNotAMultipleOf512() throws IOException {
    QemuImg.assumeAvailable();
    Path src = dir.resolve("odd.raw");
    Disks.mixed(src, (3L << 20) + 77, 9);
    Path image = convert(src, "--cluster-size", "4k");
    QemuImg.assertClean(image);
    // qemu-img compares the image's 512-rounded size: the source padded with zeros.
    Path padded = dir.resolve("odd-padded.raw");
    Files.copy(src, padded);
    try (var f = new java.io.RandomAccessFile(padded.toFile(), "rw")) {
      f.setLength((Files.size(src) + 511) / 512 * 512);
    }
    QemuImg.assertIdentical(padded, image);
  }

  @Test
  void writesEveryModeCorrectly() throws IOException {
    QemuImg.assumeAvailable();
    Path src = dir.resolve("modes.raw");
    Disks.mixed(src, 16L << 20, 12);
    for (String[] mode : new String[][] {
        {"--target-cache", "direct", "--write-cache", "on"},
        {"--target-cache", "writeback", "--write-cache", "on"},
        {"--target-cache", "direct", "--write-cache", "off"},
        {"--target-cache", "writeback", "--write-cache", "off"}}) {
      Path image = convert(src, mode[0], mode[1], mode[2], mode[3], "--force");
      assertGood(src, image);
    }
  }

  @Test
  void sparse64GiBWithAFewMiBOfDataIsQuickBecauseHolesAreNotRead() throws IOException {
    QemuImg.assumeAvailable();
    Path src = dir.resolve("sparse64g.raw");
    Disks.sparse(src, 64L << 30, 8, 0, 1L << 30, 17L << 30, (64L << 30) - (64 << 10));
    Path image = convert(src, "--threads", "2");
    assertTrue(Files.size(image) < (8 << 20), "image size " + Files.size(image));
    assertGood(src, image);
  }

  @Test
  void forceReplacesTargetOnlyWhenTheNewImageIsComplete() throws IOException {
    QemuImg.assumeAvailable();
    Path src = dir.resolve("f.raw");
    Disks.mixed(src, 4L << 20, 2);
    Path target = dir.resolve("f.raw.qcow2");
    Files.writeString(target, "old");
    assertGood(src, convert(src, "--force"));
  }

  @Test
  void directModeKeepsTheImageOutOfThePageCache() throws Exception {
    QemuImg.assumeAvailable();
    Path src = dir.resolve("cache.raw");
    Disks.ext4(src, 128L << 20);
    Path image = convert(src, "--target-cache", "direct");
    long resident = residentBytes(image);
    assertTrue(resident <= (1 << 20), "resident bytes of the image after a direct convert: " + resident);
    assertGood(src, image);
  }

  /** Bytes of the file in the page cache, by util-linux fincore. */
  static long residentBytes(Path file) throws Exception {
    Process p = new ProcessBuilder("fincore", "--bytes", "--noheadings", "--output", "RES", file.toString())
        .redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes()).trim();
    assertEquals(0, p.waitFor(), out);
    return Long.parseLong(out.split("\\s+")[0].toLowerCase(Locale.ROOT));
  }
}
