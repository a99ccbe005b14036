package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/** An embedded backup stopped as Ctrl-C stops it, once its committed state covers written ranges. */
final class InterruptedBackup {
  private InterruptedBackup() {}

  /**
   * Runs {@code args} (a backup with {@code --state-dir} and 1 s checkpoints) until {@code part}
   * holds {@code minBytes} and one more checkpoint was committed after that, then interrupts it;
   * asserts it ended with exit 1 and kept {@code part} for a resume.
   */
  static CliRun after(String[] args, Path part, long minBytes) throws Exception {
    Environment env = Environment.system();
    CompletableFuture<CliRun> first = CompletableFuture.supplyAsync(() -> CliRun.of(env, args));
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (!(Files.exists(part) && Files.size(part) >= minBytes) && System.nanoTime() < deadline && !first.isDone()) {
      Thread.sleep(20);
    }
    long seen = newestState(part);
    while (newestState(part) <= seen && System.nanoTime() < deadline && !first.isDone()) {
      Thread.sleep(20);
    }
    assertTrue(newestState(part) > seen, "a checkpoint was committed after some ranges were written");
    assertTrue(env.interrupts().interrupt(), "the job was still running when interrupted");
    CliRun stopped = first.get(60, TimeUnit.SECONDS);
    assertEquals(1, stopped.exitCode(), stopped.err());
    assertTrue(Files.exists(part), "kept for the resume");
    return stopped;
  }

  /** The sequence of the newest checkpoint state file of {@code part}, 0 when there is none. */
  private static long newestState(Path part) throws IOException {
    String prefix = part.getFileName() + ".state-";
    try (Stream<Path> s = Files.list(part.getParent())) {
      return s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(prefix))
          .mapToLong(n -> Long.parseLong(n.substring(prefix.length()))).max().orElse(0);
    }
  }
}
