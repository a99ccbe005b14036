package io.zcow.qcow2;

import io.zcow.BadInputException;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Reads the digest manifest of a finished image, a span of entries at a time (positional reads:
 * never the whole manifest, which is gigabytes at 16 TiB). Opening checks that the manifest
 * belongs to the image as it is now. Thread safe.
 */
public final class ManifestReader implements Closeable {
  /** The one line that tells an operator how to get a usable previous image. */
  public static final String FIX = "run a full backup (without --incremental) to start a new chain";

  /**
   * Image-and-manifest states whose identity matched, so a second open of the same files (the
   * writer checks PREV off its term's thread, then opens the overlay) does not read every L2 table
   * again. A write to either file changes its modification time or size, and so the key.
   */
  private static final java.util.Map<String, Boolean> VERIFIED = new java.util.concurrent.ConcurrentHashMap<>();
  private static final int MAX_VERIFIED = 1024;

    private final Path path;
  private final FileChannel channel;
  private final Manifest.Header header;

  private ManifestReader(Path path, FileChannel channel, Manifest.Header header) {
    this.path = path;
    this.channel = channel;
    this.header = header;
  }

  /**
   * Opens the manifest of {@code image} and checks it against the image: header intact, same
   * cluster size and virtual size, the identity of the image as it is now, and a length that
   * covers every cluster.
   *
   * @throws BadInputException one line naming the image, what is wrong and {@link #FIX}
   */
  public static ManifestReader open(Path image) {
    Path path = Manifest.pathOf(image);
    if (!Files.isRegularFile(path)) {
      throw new BadInputException("previous image " + image + " has no digest manifest (" + path.getFileName()
          + "): " + FIX);
    }
    FileChannel ch;
    try {
      ch = FileChannel.open(path);
    } catch (IOException e) {
      throw new BadInputException("cannot read digest manifest " + path + ": " + e.getMessage());
    }
    try {
      ByteBuffer b = ByteBuffer.allocate(Manifest.HEADER_BYTES);
      while (b.hasRemaining() && ch.read(b, b.position()) > 0) {
        // read the whole header
      }
      Manifest.Header h;
      try {
        h = Manifest.Header.decode(b.flip(), path);
      } catch (BadInputException e) {
        throw new BadInputException(e.getMessage() + ": " + FIX);
      }
      ByteBuffer ih = ByteBuffer.allocate(Header.V3_LENGTH);
      try (FileChannel ic = FileChannel.open(image)) {
        while (ih.hasRemaining() && ic.read(ih, ih.position()) > 0) {
          // read the image's header
        }
      }
      Header imageHeader = Header.decode(ih.flip());
      if (imageHeader.clusterBits() != h.clusterBits() || imageHeader.virtualSize() != h.virtualSize()) {
        throw new BadInputException("digest manifest " + path + " describes " + h.virtualSize() + " bytes in "
            + (1 << h.clusterBits()) + "-byte clusters, not image " + image + ": " + FIX);
      }
      long expected = Manifest.entryOffset(h.guestClusters());
      if (ch.size() != expected) {
        throw new BadInputException("digest manifest " + path + " is " + ch.size() + " bytes, not " + expected
            + ": " + FIX);
      }
      String state = fileState(image, path);
      if (!VERIFIED.containsKey(state) && !Arrays.equals(ImageIdentity.of(image), h.identity())) {
        throw new BadInputException("digest manifest " + path + " does not match " + image
            + " (the image changed after it was written, e.g. by qemu-img commit): " + FIX);
      }
      if (VERIFIED.size() >= MAX_VERIFIED) {
        VERIFIED.clear();
      }
      VERIFIED.put(state, Boolean.TRUE);
      return new ManifestReader(path, ch, h);
    } catch (IOException | UncheckedIOException e) {
      closeQuietly(ch);
      throw new BadInputException("cannot read digest manifest " + path + " or its image: " + e.getMessage());
    } catch (RuntimeException e) {
      closeQuietly(ch);
      if (e instanceof io.zcow.CorruptException) {
        throw new BadInputException("previous image " + image + " is not a usable qcow2 image: " + e.getMessage());
      }
      throw e;
    }
  }

  private static String fileState(Path image, Path manifest) throws IOException {
    java.nio.file.attribute.BasicFileAttributes i = Files.readAttributes(image,
        java.nio.file.attribute.BasicFileAttributes.class);
    java.nio.file.attribute.BasicFileAttributes m = Files.readAttributes(manifest,
        java.nio.file.attribute.BasicFileAttributes.class);
    return image.toAbsolutePath().normalize() + "|" + i.fileKey() + "|" + i.size() + "|"
        + i.lastModifiedTime().to(java.util.concurrent.TimeUnit.NANOSECONDS) + "|" + m.fileKey() + "|" + m.size() + "|"
        + m.lastModifiedTime().to(java.util.concurrent.TimeUnit.NANOSECONDS);
  }

  /** As {@link #open}, or null (with the reason in {@code why[0]}) when there is no usable manifest. */
  public static ManifestReader openIfUsable(Path image, String[] why) {
    try {
      return open(image);
    } catch (BadInputException e) {
      why[0] = e.getMessage();
      return null;
    }
  }

  /**
   * The entries of {@code count} clusters from {@code first} of {@code image}'s manifest, 32
   * bytes each (zeros past its end), for a caller that checked it with {@link #open} when its job
   * began: only the header is read again, the identity is not recomputed.
   *
   * @throws BadInputException when the manifest is gone or its header is no longer one
   */
  public static byte[] readSpan(Path image, long first, int count) {
    Path path = Manifest.pathOf(image);
    try (FileChannel ch = FileChannel.open(path)) {
      ByteBuffer b = ByteBuffer.allocate(Manifest.HEADER_BYTES);
      while (b.hasRemaining() && ch.read(b, b.position()) > 0) {
        // read the whole header
      }
      try (ManifestReader r = new ManifestReader(path, ch, Manifest.Header.decode(b.flip(), path))) {
        byte[] out = new byte[count * Manifest.DIGEST_BYTES];
        r.read(first, count, out);
        return out;
      }
    } catch (IOException e) {
      throw new BadInputException("cannot read digest manifest " + path + ": " + e.getMessage());
    }
  }

  public Manifest.Header header() {
    return header;
  }

  /** Clusters the manifest covers. */
  public long clusters() {
    return header.guestClusters();
  }

  /**
   * Reads the entries of {@code count} clusters from {@code first} into {@code dst} at 0; clusters
   * past the manifest's end read as zero entries (an overlay larger than its backing file reads
   * zeros there).
   */
  public void read(long first, int count, byte[] dst) {
    int covered = (int) Math.max(0, Math.min(count, header.guestClusters() - first));
    Arrays.fill(dst, covered * Manifest.DIGEST_BYTES, count * Manifest.DIGEST_BYTES, (byte) 0);
    ByteBuffer b = ByteBuffer.wrap(dst, 0, covered * Manifest.DIGEST_BYTES);
    long pos = Manifest.entryOffset(first);
    try {
      while (b.hasRemaining()) {
        int n = channel.read(b, pos);
        if (n < 0) {
          throw new io.zcow.CorruptException("digest manifest " + path + " ends early at 0x" + Long.toHexString(pos));
        }
        pos += n;
      }
    } catch (IOException e) {
      throw new UncheckedIOException("reading digest manifest " + path, e);
    }
  }

  @Override
  public void close() {
    closeQuietly(channel);
  }

  private static void closeQuietly(FileChannel ch) {
    try {
      ch.close();
    } catch (IOException ignored) {
      // read-only: nothing was lost
    }
  }
}
