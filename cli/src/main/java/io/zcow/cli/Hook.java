package io.zcow.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.util.Map;

/**
 * A {@code --pre-hook}/{@code --post-hook} command: run by {@code /bin/sh -c}, its output copied
 * to our stderr (so it lands where the progress and errors of the run go), waited for.
 */
final class Hook {
  private Hook() {}

  /**
   * Runs {@code command} with {@code env} added to this process's environment.
   *
   * @return its exit status; -1 when it could not be started (the reason is printed)
   */
  static int run(String option, String command, Map<String, String> env, PrintStream err) throws InterruptedException {
    ProcessBuilder pb = new ProcessBuilder("/bin/sh", "-c", command).redirectErrorStream(true);
    pb.environment().putAll(env);
    Process p;
    try {
      p = pb.start();
    } catch (IOException e) {
      err.println("zcow: " + option + " could not start: " + e.getMessage());
      return -1;
    }
    try (InputStream in = p.getInputStream()) {
      p.getOutputStream().close();
      in.transferTo(err);
    } catch (IOException e) {
      err.println("zcow: " + option + ": its output could not be read: " + e.getMessage());
    } finally {
      err.flush();
    }
    try {
      return p.waitFor();
    } catch (InterruptedException e) {
      p.destroy();
      throw e;
    }
  }
}
