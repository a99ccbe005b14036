package io.zcow.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import picocli.CommandLine;

/**
 * Runs the real command line in-process and captures its exit code and stderr; a cluster role
 * without a key gets the test clusters' ({@link ClusterKeys}).
 */
record CliRun(int exitCode, String err) {
  static CliRun of(String... args) {
    return of(Environment.system(), args);
  }

  /** Runs with {@code env} in place of the system's clock, file systems and interrupts. */
  static CliRun of(Environment env, String... args) {
    return exactly(env, ClusterKeys.secured(java.util.List.of(args)).toArray(String[]::new));
  }

  /** Runs {@code args} as they are: no key is added. */
  static synchronized CliRun exactly(Environment env, String... args) {
    ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
    PrintStream oldErr = System.err;
    PrintStream capture = new PrintStream(errBytes, true, StandardCharsets.UTF_8);
    System.setErr(capture);
    try {
      CommandLine cl = Main.commandLine(env);
      cl.setErr(new PrintWriter(capture, true));
      int code = cl.execute(args);
      return new CliRun(code, errBytes.toString(StandardCharsets.UTF_8));
    } finally {
      System.setErr(oldErr);
    }
  }
}
