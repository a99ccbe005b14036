package io.zcow.writer;

import io.zcow.BadInputException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * Keeps every target under the writer's target root. A JobSpec's target_path is relative to the
 * root; an absolute path, a {@code ..} component, or a parent directory whose real path (symlinks
 * resolved) leaves the root is refused, and so is a target that is itself a symlink.
 */
final class TargetConfinement {
  private final Path root;
  private final Path realRoot;

  TargetConfinement(Path root) {
    this.root = root.toAbsolutePath().normalize();
    try {
      this.realRoot = this.root.toRealPath();
    } catch (IOException e) {
      throw new BadInputException("target root " + root + " does not exist or cannot be read: " + e.getMessage());
    }
    if (!Files.isDirectory(realRoot)) {
      throw new BadInputException("target root " + root + " is not a directory");
    }
  }

  /**
   * The target's absolute path, with its parent directory created (inside the root).
   *
   * @throws BadInputException naming why the path is refused
   */
  Path resolve(String targetPath) {
    return confine(targetPath, true, "target path");
  }

  /**
   * An existing file under the root (the previous image of an incremental job), confined as a
   * target is, with no directory created.
   *
   * @throws BadInputException naming why the path is refused
   */
  Path resolveExisting(String path) {
    Path p = confine(path, false, "previous image");
    if (!Files.isRegularFile(p)) {
      throw new BadInputException("previous image " + path + " does not exist under the target root " + root);
    }
    try {
      if (!p.toRealPath().startsWith(realRoot)) {
        throw new BadInputException("previous image " + path + " escapes the target root through a symlink");
      }
    } catch (IOException e) {
      throw new BadInputException("previous image " + path + " cannot be read: " + e.getMessage());
    }
    return p;
  }

  private Path confine(String targetPath, boolean create, String what) {
    if (targetPath == null || targetPath.isEmpty()) {
      throw new BadInputException(what + " is empty");
    }
    Path rel;
    try {
      rel = Path.of(targetPath);
    } catch (InvalidPathException e) {
      throw new BadInputException(what + " " + targetPath + " is not a valid path: " + e.getMessage());
    }
    if (rel.isAbsolute()) {
      throw new BadInputException(what + " " + targetPath + " is absolute; it must be relative to the target root");
    }
    for (Path part : rel) {
      if (part.toString().equals("..")) {
        throw new BadInputException(what + " " + targetPath + " contains '..'");
      }
    }
    Path target = realRoot.resolve(rel).normalize();
    if (!target.startsWith(realRoot) || target.equals(realRoot)) {
      throw new BadInputException(what + " " + targetPath + " leaves the target root");
    }
    Path parent = target.getParent();
    try {
      // Every existing ancestor must really lie inside the root (a symlinked directory may not).
      Path existing = parent;
      while (existing != null && !Files.exists(existing, LinkOption.NOFOLLOW_LINKS)) {
        existing = existing.getParent();
      }
      if (existing == null || !existing.toRealPath().startsWith(realRoot)) {
        throw new BadInputException(what + " " + targetPath + " escapes the target root through a symlink");
      }
      if (!create) {
        return target;
      }
      Files.createDirectories(parent);
      if (!parent.toRealPath().startsWith(realRoot)) {
        throw new BadInputException(what + " " + targetPath + " escapes the target root through a symlink");
      }
    } catch (IOException e) {
      throw new BadInputException("cannot prepare the directory of " + targetPath + ": " + e.getMessage());
    }
    for (Path p : new Path[] {target, io.zcow.qcow2.ImageWriter.partPath(target)}) {
      if (Files.isSymbolicLink(p)) {
        throw new BadInputException(what + " " + targetPath + " is a symlink (" + p.getFileName() + ")");
      }
    }
    return target;
  }

  Path root() {
    return root;
  }
}
