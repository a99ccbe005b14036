package io.zcow.cli.faults;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * One process of a {@link LoopbackCluster}: a zcow role ({@code io.zcow.cli.Main ARGS}) in a JVM
 * of its own, its stdout and stderr in files under the cluster's log directory. Faults are real
 * signals: {@link #kill()} is SIGKILL, {@link #stop()} / {@link #cont()} are SIGSTOP / SIGCONT,
 * {@link #terminate(Duration)} is SIGTERM. A role that was killed is started again with
 * {@link LoopbackCluster#restart(Role)} (same arguments, a new Role).
 *
 * <p>Waits fail the test (JUnit {@code fail}) with the role's output and the cluster's logs.
 * Thread safe enough for one test thread plus readers of its output.
 */
public final class Role {
  private final String name;
  private final List<String> args;
  private final Process process;
  private final Path out;
  private final Path err;
  private final Supplier<String> clusterLogs;

  Role(String name, List<String> args, Process process, Path out, Path err, Supplier<String> clusterLogs) {
    this.name = name;
    this.args = List.copyOf(args);
    this.process = process;
    this.out = out;
    this.err = err;
    this.clusterLogs = clusterLogs;
  }

  /** The name given at start; a restarted role keeps it (its logs get a suffix). */
  public String name() {
    return name;
  }

  /** The zcow arguments it was started with ({@code writer --kafka ...}). */
  public List<String> args() {
    return args;
  }

  public long pid() {
    return process.pid();
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  public Process process() {
    return process;
  }

  /** SIGKILL (kill -9), then waits until the process is gone. Nothing of it runs afterwards. */
  public void kill() {
    process.destroyForcibly();
    waitGone(Duration.ofSeconds(30));
  }

  /** SIGSTOP: the process freezes (keeps its sockets, locks and ZooKeeper session until it expires). */
  public void stop() {
    signal("STOP");
  }

  /** SIGCONT: a stopped process runs on. */
  public void cont() {
    signal("CONT");
  }

  /** SIGTERM (shutdown hooks run) and waits for the exit; SIGKILL after the timeout. Returns the exit code. */
  public int terminate(Duration timeout) {
    process.destroy();
    try {
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        kill();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      kill();
    }
    return process.exitValue();
  }

  private void signal(String sig) {
    try {
      Process p = new ProcessBuilder("kill", "-" + sig, Long.toString(pid())).inheritIO().start();
      if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
        fail("kill -" + sig + " " + pid() + " (" + name + ") failed");
      }
    } catch (IOException e) {
      fail("kill -" + sig + " " + pid() + ": " + e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      fail("interrupted");
    }
  }

  private void waitGone(Duration timeout) {
    try {
      process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  public String stdout() {
    return read(out);
  }

  public String stderr() {
    return read(err);
  }

  /** Waits until stdout satisfies {@code ready}; fails if the process exits first or time runs out. */
  public String awaitStdout(Predicate<String> ready, Duration timeout) {
    return awaitFile(out, ready, timeout);
  }

  public String awaitStderr(Predicate<String> ready, Duration timeout) {
    return awaitFile(err, ready, timeout);
  }

  /** Waits until stderr (where the roles log) has a match of {@code pattern}. */
  public String awaitLog(Pattern pattern, Duration timeout) {
    return awaitFile(err, s -> pattern.matcher(s).find(), timeout);
  }

  /** How many times {@code pattern} matches stderr so far. */
  public int countLog(Pattern pattern) {
    return (int) pattern.matcher(stderr()).results().count();
  }

  /** The number in group 1 of the last match of {@code pattern} in stderr (e.g. a leader's epoch); -1 without one. */
  public long lastNumber(Pattern pattern) {
    java.util.regex.Matcher m = pattern.matcher(stderr());
    long n = -1;
    while (m.find()) {
      n = Long.parseLong(m.group(1));
    }
    return n;
  }

  /** Waits for the exit and returns its code; fails the test when it does not exit in time. */
  public int await(Duration timeout) {
    try {
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        fail(name + " still running after " + timeout + ": " + describe() + clusterLogs.get());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      fail("interrupted");
    }
    return process.exitValue();
  }

  private String awaitFile(Path file, Predicate<String> ready, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      String s = read(file);
      if (ready.test(s)) {
        return s;
      }
      if (!process.isAlive()) {
        s = read(file);
        if (ready.test(s)) {
          return s;
        }
        fail(name + " exited with " + process.exitValue() + " before it was ready: " + describe() + clusterLogs.get());
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        fail("interrupted");
      }
    }
    fail(name + " not ready within " + timeout + ": " + describe() + clusterLogs.get());
    return null;
  }

  /** The tails of stdout and stderr, for failure messages. */
  public String describe() {
    return "\n--- " + name + " (pid " + pid() + ") stdout:\n" + tail(stdout()) + "\n--- " + name + " stderr:\n"
        + tail(stderr());
  }

  private static String read(Path file) {
    try {
      return new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "";
    }
  }

  private static String tail(String s) {
    return s.length() <= 6000 ? s : "..." + s.substring(s.length() - 6000);
  }

  @Override
  public String toString() {
    return name + "(pid " + pid() + ")";
  }
}
