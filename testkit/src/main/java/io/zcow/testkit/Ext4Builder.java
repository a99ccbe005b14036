package io.zcow.testkit;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Makes {@link Disks#ext4} images. mkfs.ext4 -d takes a single directory and fails when the
 * content does not fit, so the content is first staged: a directory next to the output that
 * mirrors chosen system files up to a byte and file budget, as hard links where possible (no
 * copy) and as copies otherwise. If mkfs still runs out of room, the budget is halved and it
 * tries again.
 */
final class Ext4Builder {

  static final long MIN_SIZE = 16L << 20;
  /** ext4 metadata (inode tables, journal, bitmaps) takes a share of the size; leave it room. */
  private static final double CONTENT_SHARE = 0.75;
  /** Below 512 MiB mke2fs makes an inode per 4 KiB, above per 16 KiB; plan for the sparser. */
  private static final long BYTES_PER_INODE = 16 * 1024;
  private static final int ATTEMPTS = 4;
  /** Fixed, so that two images made from the same content on one machine differ less. */
  private static final String UUID = "7a636f77-7465-7374-6b69-746578743400";

  private Ext4Builder() {}

  static Path build(Path out, long size) {
    if (size < MIN_SIZE) {
      throw new IllegalArgumentException("ext4 size must be at least 16 MiB, was " + size);
    }
    Path mkfs = Tools.require("mkfs.ext4", "e2fsprogs", "/usr/sbin", "/sbin");
    Path dir = out.toAbsolutePath().getParent();
    long bytes = (long) (size * CONTENT_SHARE) - (4L << 20);
    long files = (long) (size / BYTES_PER_INODE * 0.8);
    Tools.Result last = null;
    try {
      for (int attempt = 0; attempt < ATTEMPTS; attempt++, bytes /= 2, files /= 2) {
        Path staging = Files.createTempDirectory(dir, ".ext4-content-");
        try {
          new Stager(staging, bytes, files).stage(contentRoots());
          Files.deleteIfExists(out);
          last =
              Tools.run(
                  List.of(
                      mkfs.toString(), "-q", "-F", "-U", UUID, "-E", "hash_seed=" + UUID,
                      "-d", staging.toString(), out.toString(), Long.toString(size / 1024)),
                  Tools.DEFAULT_TIMEOUT);
        } finally {
          deleteTree(staging);
        }
        if (last.exitCode() == 0) {
          // mkfs rounds down to whole KiB; make the file exactly the asked size.
          try (RandomAccessFile f = new RandomAccessFile(out.toFile(), "rw")) {
            f.setLength(size);
          }
          return out;
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot make ext4 image " + out, e);
    }
    throw new IllegalStateException(
        "mkfs.ext4 failed " + ATTEMPTS + " times, even with a budget of " + bytes * 2
            + " bytes; last: " + last.describe());
  }

  /**
   * Where content comes from, best first: a small image gets the head of this list. The JDK's
   * libraries and text-heavy directories come before /usr/share/doc, whose files are mostly
   * gzipped already, so that even a small image holds data that compresses. Missing ones are
   * skipped; a file reached twice is staged once.
   */
  private static List<Path> contentRoots() {
    Path javaHome = Path.of(System.getProperty("java.home"));
    List<Path> roots = new ArrayList<>();
    for (String sub : List.of("lib", "conf", "bin", "include")) {
      roots.add(javaHome.resolve(sub));
    }
    for (String s :
        List.of(
            "/usr/share/perl", "/usr/share/zoneinfo", "/usr/share/i18n", "/usr/lib/python3",
            "/usr/share/doc", "/usr/share", "/usr/lib", "/usr/bin")) {
      roots.add(Path.of(s));
    }
    roots.add(javaHome);
    return roots;
  }

  /** Mirrors regular files under staging/ABSOLUTE/PATH until a budget runs out. */
  private static final class Stager {
    private final Path staging;
    /** No single file may take more than a quarter: small images still get varied content. */
    private final long maxFileSize;
    private long bytesLeft;
    private long filesLeft;
    private boolean linksWork = true;

    Stager(Path staging, long bytes, long files) {
      this.staging = staging;
      this.maxFileSize = bytes / 4;
      this.bytesLeft = bytes;
      this.filesLeft = files;
    }

    void stage(List<Path> roots) throws IOException {
      for (Path root : roots) {
        if (Files.isDirectory(root) && !full()) {
          walk(root.toAbsolutePath().normalize());
        }
      }
    }

    private boolean full() {
      return bytesLeft < 4096 || filesLeft < 1;
    }

    /** Depth first in name order, so a given machine always stages the same files. */
    private void walk(Path dir) throws IOException {
      List<Path> entries = new ArrayList<>();
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
        ds.forEach(entries::add);
      } catch (IOException e) {
        return; // unreadable directory: not our business
      }
      entries.sort(Comparator.comparing(Path::toString));
      for (Path p : entries) {
        if (full()) {
          return;
        }
        BasicFileAttributes a =
            Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (a.isDirectory()) {
          filesLeft--;
          bytesLeft -= 4096;
          walk(p);
        } else if (a.isRegularFile() && Files.isReadable(p)) {
          long cost = (a.size() + 4095) / 4096 * 4096 + 4096;
          if (cost <= bytesLeft && a.size() <= maxFileSize) {
            if (add(p)) {
              bytesLeft -= cost;
              filesLeft--;
            }
          }
        }
        // Symbolic links, devices, sockets: skipped, never followed.
      }
    }

    private boolean add(Path source) throws IOException {
      Path target = staging.resolve(source.toString().substring(1));
      if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
        return false; // reached again through another root
      }
      Files.createDirectories(target.getParent());
      if (linksWork) {
        try {
          Files.createLink(target, source);
          return true;
        } catch (IOException | UnsupportedOperationException e) {
          linksWork = false; // another file system, or links refused: copy from now on
        }
      }
      try {
        Files.copy(source, target, StandardCopyOption.COPY_ATTRIBUTES);
        return true;
      } catch (IOException e) {
        Files.deleteIfExists(target);
        return false;
      }
    }
  }

  /** Deletes the staging tree; it holds only directories, links and copies, no symlinks. */
  private static void deleteTree(Path root) throws IOException {
    try (Stream<Path> s = Files.walk(root)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
