package io.zcow.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.util.Map;
import java.util.TreeMap;
import picocli.CommandLine.Option;

/**
 * {@code --pre-hook}/{@code --post-hook}: commands run by {@code /bin/sh -c} around a job, their
 * output copied to our stderr (where the progress and errors of the run go), waited for.
 */
final class HookOptions {
  @Option(names = "--pre-hook", paramLabel = "CMD", description = "Run CMD with /bin/sh -c before the job starts (after the input checks); a non-zero exit stops the backup (exit 1) before anything starts. Environment: ZCOW_JOB_ID, ZCOW_SOURCE, ZCOW_TARGET.")
  String preHook;

  @Option(names = "--post-hook", paramLabel = "CMD", description = "Run CMD with /bin/sh -c after the job ends, also when it failed or was interrupted (not when --pre-hook failed). Its failure is reported and does not change the exit code. Environment: as --pre-hook, and ZCOW_EXIT (the backup's exit code).")
  String postHook;

  /** The hooks' environment of one job. */
  static Map<String, String> environment(String jobId, String source, String target) {
    return new TreeMap<>(Map.of("ZCOW_JOB_ID", jobId, "ZCOW_SOURCE", source, "ZCOW_TARGET", target));
  }

  /** Runs the pre-hook, if any: false (reported) when it failed and the job must not start. */
  boolean before(Map<String, String> env, PrintStream err) throws InterruptedException {
    if (preHook == null) {
      return true;
    }
    int status = run("--pre-hook", preHook, env, err);
    if (status != 0) {
      err.println("zcow: --pre-hook exited with status " + status + "; nothing was started");
      return false;
    }
    return true;
  }

  /** Runs the post-hook, if any, with the job's exit code; its failure is reported, never thrown. */
  void after(Map<String, String> env, int code, PrintStream err) throws InterruptedException {
    if (postHook == null) {
      return;
    }
    Map<String, String> withExit = new TreeMap<>(env);
    withExit.put("ZCOW_EXIT", Integer.toString(code));
    int status = run("--post-hook", postHook, withExit, err);
    if (status != 0) {
      err.println("zcow: --post-hook exited with status " + status
          + (code == Main.EXIT_OK ? " (the backup itself is done)" : ""));
    }
  }

  /**
   * Runs {@code command} with {@code env} added to this process's environment.
   *
   * @return its exit status; -1 when it could not be started (the reason is printed)
   */
  private static int run(String option, String command, Map<String, String> env, PrintStream err)
      throws InterruptedException {
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
