package io.zcow.qcow2;

import io.zcow.TargetIoException;
import java.io.Closeable;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Builds the digest manifest of an image in {@code TARGET.digests.part}, entry by entry in any
 * order (positional writes: thread safe, memory independent of the disk's size), and publishes it
 * with its image.
 *
 * <p>Order at the finish ({@link #seal} then {@link #publish}, before the image's own rename):
 * entries and header fsynced, {@code TARGET.digests.part} renamed to {@code TARGET.digests}, then
 * the image renamed. An image at TARGET therefore always has its manifest beside it. A crash
 * between the two renames leaves {@code TARGET.digests} beside {@code TARGET.part}: a resumed
 * writer ({@link #resume}) takes it back as its part file and publishes it again at the finish;
 * a new image at that name replaces it. See docs/DESIGN.md.
 */
final class ManifestWriter implements Closeable {
  private static final int COPY_CHUNK = 2048; // entries: 64 KiB read at a time
  private static final byte[] ZEROS = new byte[COPY_CHUNK * Manifest.DIGEST_BYTES];

  private final Path target;
  private final Path part;
  private final FileChannel channel;
  private final ImageGeometry geometry;

  private ManifestWriter(Path target, FileChannel channel, ImageGeometry geometry) {
    this.target = target;
    this.part = Manifest.partOf(target);
    this.channel = channel;
    this.geometry = geometry;
  }

  /** A new manifest for a new image: a stale part file (of no live image) is replaced. */
  static ManifestWriter create(Path target, ImageGeometry geometry) {
    Path part = Manifest.partOf(target);
    try {
      return new ManifestWriter(target, FileChannel.open(part, StandardOpenOption.CREATE, StandardOpenOption.READ,
          StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING), geometry);
    } catch (IOException e) {
      throw TargetIoException.of("creating " + part, part, e);
    }
  }

  /**
   * The manifest of an image being resumed: its part file, or, after a crash between the
   * manifest's rename and the image's, the published manifest taken back (no image at TARGET yet,
   * so it belongs to this one). Null when neither exists (a job begun by a zcow without
   * manifests): the image then gets none.
   */
  static ManifestWriter resume(Path target, ImageGeometry geometry) {
    Path part = Manifest.partOf(target);
    Path published = Manifest.pathOf(target);
    try {
      if (!Files.exists(part) && Files.exists(published) && !Files.exists(target)) {
        Files.move(published, part, StandardCopyOption.ATOMIC_MOVE);
      }
      if (!Files.exists(part)) {
        return null;
      }
      return new ManifestWriter(target, FileChannel.open(part, StandardOpenOption.READ, StandardOpenOption.WRITE),
          geometry);
    } catch (IOException e) {
      throw TargetIoException.of("reopening " + part, part, e);
    }
  }

  /** Records a cluster's digest (32 bytes). */
  void put(long guestCluster, byte[] digest) {
    write(ByteBuffer.wrap(digest, 0, Manifest.DIGEST_BYTES), Manifest.entryOffset(guestCluster));
  }

  /**
   * Carries {@code count} entries from {@code first} over from the backing file's manifest (the
   * clusters an overlay leaves to it), a bounded chunk at a time; runs of zero entries are left
   * as holes.
   */
  void copy(ManifestReader from, long first, long count) {
    int chunk = COPY_CHUNK;
    byte[] buf = new byte[chunk * Manifest.DIGEST_BYTES];
    for (long c = first; c < first + count; ) {
      int n = (int) Math.min(chunk, first + count - c);
      from.read(c, n, buf);
      int i = 0;
      while (i < n) {
        int at = i * Manifest.DIGEST_BYTES;
        int m = java.util.Arrays.mismatch(buf, at, n * Manifest.DIGEST_BYTES, ZEROS, 0, n * Manifest.DIGEST_BYTES - at);
        if (m < 0) {
          break; // zeros to the end of the chunk: left as a hole
        }
        i = (at + m) / Manifest.DIGEST_BYTES;
        int j = i;
        while (j < n && !Manifest.isZero(buf, j * Manifest.DIGEST_BYTES)) {
          j++;
        }
        if (j > i) {
          write(ByteBuffer.wrap(buf, i * Manifest.DIGEST_BYTES, (j - i) * Manifest.DIGEST_BYTES),
              Manifest.entryOffset(c + i));
        }
        i = j;
      }
      c += n;
    }
  }

  private void write(ByteBuffer b, long at) {
    long pos = at;
    try {
      while (b.hasRemaining()) {
        pos += channel.write(b, pos);
      }
    } catch (IOException e) {
      throw TargetIoException.of(String.format("writing %s at 0x%x", part, pos), part, e);
    }
  }

  /** Makes the entries written so far durable (with a checkpoint of the image). */
  void force() {
    try {
      channel.force(false);
    } catch (IOException e) {
      throw TargetIoException.of("fsync of " + part, part, e);
    }
  }

  /**
   * Writes the header naming the finished image's {@code identity}, gives the file its full
   * length (a sparse tail stays a hole), fsyncs and closes it.
   */
  void seal(byte[] identity) {
    write(Manifest.Header.of(geometry, identity).encode(), 0);
    try (RandomAccessFile raf = new RandomAccessFile(part.toFile(), "rw")) {
      long length = Manifest.entryOffset(geometry.guestClusters());
      if (raf.length() < length) {
        raf.setLength(length);
      }
    } catch (IOException e) {
      throw TargetIoException.of("extending " + part, part, e);
    }
    force();
    close();
  }

  /** Renames the sealed part file to {@code TARGET.digests} and fsyncs the directory, before the image is renamed. */
  void publish() {
    Path published = Manifest.pathOf(target);
    try {
      Files.move(part, published, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw TargetIoException.of("renaming " + part + " to " + published, published, e);
    }
    StateFiles.fsyncDirectory(published.toAbsolutePath().getParent());
  }

  @Override
  public void close() {
    try {
      channel.close();
    } catch (IOException ignored) {
      // a failed close after fsync loses nothing; before it, the image fails on its own fsync
    }
  }

  /** Closes and removes the part file (the image is being abandoned). */
  void abort() {
    close();
    StateFiles.deleteQuietly(part);
  }
}
