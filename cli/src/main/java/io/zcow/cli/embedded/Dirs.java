package io.zcow.cli.embedded;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;

/** Data directories of the embedded servers: a given one is kept, a temporary one removed. */
final class Dirs {
  private Dirs() {}

  /** {@code parent/name}, created if missing; or a fresh temporary directory when parent is null. */
  static Path dataDir(Path parent, String name) {
    try {
      if (parent == null) {
        return Files.createTempDirectory("zcow-" + name + "-");
      }
      return Files.createDirectories(parent.resolve(name));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create the " + name + " data directory: " + e.getMessage(), e);
    }
  }

  /** Walks of {@link #deleteQuietly} before it gives up. */
  private static final int DELETE_ATTEMPTS = 20;

  /**
   * Removes a directory tree, best effort: a leftover temp file must not fail a shutdown. A server
   * thread that ends late may still add a file while the tree is walked (the directory is then not
   * empty): the walk is repeated, 50 ms apart, up to {@link #DELETE_ATTEMPTS} times.
   */
  static void deleteQuietly(Path root) {
    for (int attempt = 0; attempt < DELETE_ATTEMPTS && root != null && Files.exists(root); attempt++) {
      if (attempt > 0) {
        try {
          Thread.sleep(50);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return;
        }
      }
      deleteOnce(root);
    }
  }

  private static void deleteOnce(Path root) {
    try {
      Files.walkFileTree(root, new SimpleFileVisitor<>() {
        @Override
        public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
          Files.deleteIfExists(file);
          return FileVisitResult.CONTINUE;
        }

        @Override
        public FileVisitResult postVisitDirectory(Path dir, IOException e) throws IOException {
          Files.deleteIfExists(dir);
          return FileVisitResult.CONTINUE;
        }
      });
    } catch (IOException e) {
      // best effort: the OS cleans temp directories eventually
    }
  }
}
