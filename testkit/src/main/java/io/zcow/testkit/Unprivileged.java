package io.zcow.testkit;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Runs a class's {@code main} in a child JVM as the unprivileged user {@code nobody} (uid and gid
 * 65534, no supplementary groups), through {@code setpriv}. For checks that root passes by
 * definition, such as a file without read permission: CI runs as root, and a test that skips there
 * has never run.
 *
 * <p>The child cannot read the build's class path when it lies under root's home (mode 0700), so
 * the entries of this JVM's class path are copied once into a world-readable temporary directory.
 * Whatever the child must see itself (a directory holding a test file) must be traversable by
 * others: see {@link #openToOthers(Path)}.
 */
public final class Unprivileged {
  /** nobody: the user and group a root test drops to. */
  public static final int NOBODY = 65534;

  private static List<String> classPath;

  private Unprivileged() {}

  /** True when this JVM runs as root, where permission checks need a child that is not. */
  public static boolean isRoot() {
    return "root".equals(System.getProperty("user.name"));
  }

  /** What the child printed and how it ended. */
  public record Result(int exitCode, String stdout, String stderr) {}

  /**
   * Runs {@code main} of the class as nobody and returns what it printed. On CI a missing {@code
   * setpriv} fails the test; elsewhere it skips it.
   */
  public static Result run(Class<?> main, String... args) {
    Path setpriv = Tools.require("setpriv", "util-linux", "/usr/bin", "/bin");
    List<String> command = new ArrayList<>(List.of(setpriv.toString(), "--reuid", String.valueOf(NOBODY),
        "--regid", String.valueOf(NOBODY), "--clear-groups",
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx64m", "-cp",
        String.join(File.pathSeparator, readableClassPath()), main.getName()));
    command.addAll(List.of(args));
    Tools.Result r = Tools.run(command, Duration.ofMinutes(1));
    return new Result(r.exitCode(), r.stdout(), r.stderr());
  }

  /** Makes a directory searchable and readable by every user (mode 0755). */
  public static Path openToOthers(Path dir) {
    try {
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static synchronized List<String> readableClassPath() {
    if (classPath != null) {
      return classPath;
    }
    try {
      Path root = openToOthers(Files.createTempDirectory("zcow-unprivileged-cp-"));
      Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(root), "unprivileged-cp-cleanup"));
      List<String> entries = new ArrayList<>();
      int i = 0;
      for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
        Path from = Path.of(entry);
        if (!Files.exists(from)) {
          continue;
        }
        Path to = root.resolve((i++) + "-" + from.getFileName());
        copyReadable(from, to);
        entries.add(to.toString());
      }
      classPath = List.copyOf(entries);
      return classPath;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot copy the class path for an unprivileged child", e);
    }
  }

  private static void deleteTree(Path root) {
    try (Stream<Path> all = Files.walk(root)) {
      for (Path p : all.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      // a temporary directory: what is left goes with the next reboot
    }
  }

  private static void copyReadable(Path from, Path to) throws IOException {
    if (!Files.isDirectory(from)) {
      Files.copy(from, to);
      Files.setPosixFilePermissions(to, PosixFilePermissions.fromString("rw-r--r--"));
      return;
    }
    try (Stream<Path> all = Files.walk(from)) {
      for (Path p : (Iterable<Path>) all::iterator) {
        Path q = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(q);
          openToOthers(q);
        } else {
          Files.copy(p, q);
          Files.setPosixFilePermissions(q, PosixFilePermissions.fromString("rw-r--r--"));
        }
      }
    }
  }
}
