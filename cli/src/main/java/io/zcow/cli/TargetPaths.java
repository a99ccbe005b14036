package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.qcow2.ImageWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Checks on the target path, made before anything is created so bad input leaves nothing behind. */
final class TargetPaths {
  private TargetPaths() {}

  static void check(Path target, boolean force) {
    Path dir = target.toAbsolutePath().getParent();
    if (dir == null || !Files.isDirectory(dir)) {
      throw new BadInputException("target directory " + dir + " does not exist");
    }
    if (!Files.isWritable(dir)) {
      throw new BadInputException("target directory " + dir + " is not writable");
    }
    if (Files.isDirectory(target)) {
      throw new BadInputException("target " + target + " is a directory");
    }
    if (Files.exists(target) && !force) {
      throw new BadInputException("target " + target + " exists (use --force to replace it)");
    }
    Path part = ImageWriter.partPath(target);
    if (Files.exists(part) && !force) {
      throw new BadInputException(part + " exists (left by an interrupted run?): remove it or use --force");
    }
  }

  /** With --force, a stale TARGET.part from an interrupted run is removed before starting. */
  static void clearStalePart(Path target, boolean force) {
    if (force) {
      try {
        Files.deleteIfExists(ImageWriter.partPath(target));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }
}
