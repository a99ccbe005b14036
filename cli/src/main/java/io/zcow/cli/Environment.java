package io.zcow.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.ToLongFunction;

/**
 * What a command reads from the world besides its options: the clock, a file system's usable
 * space, and where a running backup registers what Ctrl-C does. {@link Main} runs with
 * {@link #system()}; a test builds its own and passes it to {@link Main#commandLine(Environment)}
 * instead of replacing statics.
 */
record Environment(Clock clock, ToLongFunction<Path> usableSpace, Interrupts interrupts) {
  static Environment system() {
    return new Environment(Clock.systemUTC(), Environment::fileStoreUsableSpace, new Interrupts());
  }

  Environment withClock(Clock c) {
    return new Environment(c, usableSpace, interrupts);
  }

  Environment withUsableSpace(ToLongFunction<Path> space) {
    return new Environment(clock, space, interrupts);
  }

  private static long fileStoreUsableSpace(Path dir) {
    try {
      return Files.getFileStore(dir).getUsableSpace();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The interrupt of the run in progress (an embedded backup's Ctrl-C), if any. Thread safe. */
  static final class Interrupts {
    private final AtomicReference<Runnable> current = new AtomicReference<>();

    void register(Runnable interrupt) {
      current.set(interrupt);
    }

    void clear(Runnable interrupt) {
      current.compareAndSet(interrupt, null);
    }

    /** Runs the registered interrupt as SIGINT would; false when nothing runs. */
    boolean interrupt() {
      Runnable r = current.get();
      if (r == null) {
        return false;
      }
      r.run();
      return true;
    }
  }
}
