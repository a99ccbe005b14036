package io.zcow.testkit;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/** Finds external tools and runs them with a timeout; shared by {@link QemuImg} and {@link Disks}. */
final class Tools {

  /** Long enough for mkfs or a conversion of a few GiB on a slow CI disk. */
  static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(10);

  private static final Map<String, Optional<Path>> FOUND = new ConcurrentHashMap<>();

  private Tools() {}

  /** True when the environment says this is a CI run, where a missing tool is a failure. */
  static boolean onCi() {
    return "true".equalsIgnoreCase(System.getenv("CI"));
  }

  /**
   * Looks for an executable on PATH, then in {@code extraDirs} (sbin directories are often not on
   * a normal user's PATH). The answer is cached for the life of the JVM.
   */
  static Optional<Path> find(String name, String... extraDirs) {
    return FOUND.computeIfAbsent(
        name,
        n -> {
          List<String> dirs = new ArrayList<>();
          String path = System.getenv("PATH");
          if (path != null) {
            dirs.addAll(List.of(path.split(File.pathSeparator)));
          }
          dirs.addAll(List.of(extraDirs));
          for (String dir : dirs) {
            if (dir.isEmpty()) {
              continue;
            }
            Path candidate = Path.of(dir, n);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
              return Optional.of(candidate);
            }
          }
          return Optional.empty();
        });
  }

  /**
   * Returns the tool, or stops the test: on CI a missing tool fails it (a skipped test proves
   * nothing there), elsewhere the test is skipped.
   */
  static Path require(String name, String debianPackage, String... extraDirs) {
    Optional<Path> tool = find(name, extraDirs);
    if (tool.isEmpty()) {
      String message =
          name + " not found on PATH: " + debianPackage + " must be installed"
              + " (apt-get install " + debianPackage + ")";
      if (onCi()) {
        throw new AssertionError(message + "; CI=true, so this is a failure, not a skip");
      }
      Assumptions.assumeTrue(false, message + "; test skipped");
    }
    return tool.get();
  }

  /** What a finished process said; stdout and stderr kept apart so JSON on stdout stays clean. */
  record Result(List<String> command, int exitCode, String stdout, String stderr) {
    /** Everything the process printed, for error messages. */
    String output() {
      return stderr.isEmpty() ? stdout : stdout + (stdout.isEmpty() ? "" : "\n") + stderr;
    }

    String describe() {
      return "`" + String.join(" ", command) + "` exited with " + exitCode + ":\n" + output();
    }
  }

  /**
   * Runs a command to completion. Output goes to temporary files rather than pipes, so a chatty
   * process can never block on a full pipe while we wait for it.
   *
   * @throws IllegalStateException when the process cannot start or outlives the timeout (it is
   *     killed then)
   */
  static Result run(List<String> command, Duration timeout) {
    Path out = null;
    Path err = null;
    try {
      out = Files.createTempFile("zcow-testkit-", ".out");
      err = Files.createTempFile("zcow-testkit-", ".err");
      Process process =
          new ProcessBuilder(command)
              .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
              .redirectOutput(out.toFile())
              .redirectError(err.toFile())
              .start();
      boolean finished;
      try {
        finished = process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while running " + command, e);
      }
      if (!finished) {
        process.destroyForcibly();
        throw new IllegalStateException(
            "`" + String.join(" ", command) + "` did not finish within " + timeout
                + "; killed. Output so far:\n" + Files.readString(out, StandardCharsets.UTF_8)
                + Files.readString(err, StandardCharsets.UTF_8));
      }
      return new Result(
          List.copyOf(command),
          process.exitValue(),
          Files.readString(out, StandardCharsets.UTF_8),
          Files.readString(err, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new IllegalStateException("cannot run " + command + ": " + e.getMessage(), e);
    } finally {
      deleteQuietly(out);
      deleteQuietly(err);
    }
  }

  private static void deleteQuietly(Path p) {
    if (p == null) {
      return;
    }
    try {
      Files.deleteIfExists(p);
    } catch (IOException e) {
      // A leftover file in the temp directory is harmless; throwing here would hide the result.
    }
  }
}
