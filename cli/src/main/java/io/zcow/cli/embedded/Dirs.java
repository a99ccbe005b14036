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

  /** Removes a directory tree, best effort: a leftover temp file must not fail a shutdown. */
  static void deleteQuietly(Path root) {
    if (root == null || !Files.exists(root)) {
      return;
    }
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
