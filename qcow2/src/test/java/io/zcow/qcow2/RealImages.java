package io.zcow.qcow2;

import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Random;

/**
 * Raw disks and the compressed qcow2 images {@code qemu-img convert -c} makes of them: the
 * reference every reader test compares against.
 */
final class RealImages {
  /** Not a multiple of any cluster size (a partial last cluster), but of 512 as qemu-img rounds. */
  static final long SIZE = (21L << 20) - 3 * 4096 + 1536;
  static final long MIB = 1L << 20;

  private RealImages() {}

  /**
   * A raw disk whose content gives every kind of cluster at every cluster size up to 2 MiB: mixed
   * regions with mid-cluster boundaries (testkit), then zeros at 4-8 MiB (unallocated clusters),
   * random at 8-12 MiB (stored raw), text at 12-16 MiB (compressed) and random in the last
   * 100 KiB (a raw partial last cluster).
   */
  static Path raw(Path dir, long seed) {
    Path raw = dir.resolve("disk-" + seed + ".raw");
    if (Files.exists(raw)) {
      return raw;
    }
    Disks.mixed(raw, SIZE, seed);
    try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.WRITE)) {
      write(ch, 4 * MIB, new byte[(int) (4 * MIB)]);
      byte[] random = new byte[(int) (4 * MIB)];
      new Random(seed).nextBytes(random);
      write(ch, 8 * MIB, random);
      write(ch, 12 * MIB, PayloadCodecTest.compressible((int) (4 * MIB), seed));
      write(ch, SIZE - 100 * 1024, java.util.Arrays.copyOf(random, 100 * 1024));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return raw;
  }

  /** {@code qemu-img convert -c} of {@link #raw}, made once per directory and kept read-only. */
  static Path image(Path dir, String codec, int clusterSize) {
    QemuImg.assumeAvailable();
    Path image = dir.resolve("disk-" + codec + "-" + clusterSize + ".qcow2");
    if (!Files.exists(image)) {
      QemuImg.convert(raw(dir, 1), image, codec, clusterSize);
    }
    return image;
  }

  /** A private, writable copy of {@link #image} for a test to poke bytes into. */
  static Path copy(Path dir, Path image, String name) {
    Path copy = dir.resolve(name);
    try {
      return Files.copy(image, copy, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static void poke(Path file, long offset, byte[] bytes) {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      write(ch, offset, bytes);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static void pokeLong(Path file, long offset, long value) {
    poke(file, offset, ByteBuffer.allocate(8).putLong(value).array());
  }

  static long readLong(Path file, long offset) {
    return ByteBuffer.wrap(readRaw(file, offset, 8)).getLong();
  }

  static byte[] readRaw(Path raw, long offset, int length) {
    try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.READ)) {
      ByteBuffer b = ByteBuffer.allocate(length);
      while (b.hasRemaining() && ch.read(b, offset + b.position()) >= 0) {
        // keep reading
      }
      return b.array();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void write(FileChannel ch, long offset, byte[] bytes) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(bytes);
    while (b.hasRemaining()) {
      ch.write(b, offset + b.position());
    }
  }
}
