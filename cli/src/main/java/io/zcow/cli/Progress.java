package io.zcow.cli;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Shows the progress of long work on stderr: a bar redrawn in place on a terminal, plain lines
 * every few seconds otherwise, or nothing. Runs its own daemon thread until {@link #close()}.
 */
public final class Progress implements AutoCloseable {
  /** How progress is shown. */
  public enum Mode { AUTO, PLAIN, NONE }

  private final PrintStream out;
  private final boolean bar;
  private final String label;
  private final LongSupplier total;
  private final long disk; // incremental work: the disk's size, to show the share changed; else 0
  private final LongSupplier done;
  private final LongSupplier written;
  private final long start = System.nanoTime();
  private final Thread thread;
  private volatile boolean running = true;

  /**
   * @param total bytes of work
   * @param done bytes of work done so far (read from the source)
   * @param written bytes of output so far
   */
  public Progress(Mode mode, String label, long total, LongSupplier done, LongSupplier written, PrintStream out) {
    this(mode, label, () -> total, 0, done, written, out);
  }

  /**
   * Progress of an incremental job: {@code changed} bytes of work (it may be refined while the
   * job runs), shown with the share of the {@code disk} bytes they are.
   */
  public static Progress ofChanged(Mode mode, String label, LongSupplier changed, long disk, LongSupplier done,
      LongSupplier written, PrintStream out) {
    return new Progress(mode, label, changed, disk, done, written, out);
  }

  private Progress(Mode mode, String label, LongSupplier total, long disk, LongSupplier done, LongSupplier written,
      PrintStream out) {
    this.out = out;
    this.label = label;
    this.total = total;
    this.disk = disk;
    this.done = done;
    this.written = written;
    this.bar = mode == Mode.AUTO && System.console() != null;
    long periodMs = bar ? 500 : 5000;
    if (mode == Mode.NONE) {
      thread = null;
      return;
    }
    thread = new Thread(() -> {
      while (running) {
        try {
          Thread.sleep(periodMs);
        } catch (InterruptedException e) {
          return;
        }
        if (running) {
          print(false);
        }
      }
    }, "zcow-progress");
    thread.setDaemon(true);
    thread.start();
  }

  private synchronized void print(boolean last) {
    long total = this.total.getAsLong();
    long d = Math.min(done.getAsLong(), total);
    double secs = Math.max(1e-3, (System.nanoTime() - start) / 1e9);
    double rate = d / secs;
    long w = written.getAsLong();
    double pct = total == 0 ? 100 : 100.0 * d / total;
    String eta = rate > 0 && d < total ? duration((long) ((total - d) / rate)) : "-";
    String ratio = w > 0 ? String.format(Locale.ROOT, "%.2fx", (double) d / w) : "-";
    String figures = String.format(Locale.ROOT, "%5.1f%%  %s / %s%s  %s/s  out %s (%s)  %s",
        pct, human(d), human(total), disk > 0 ? " changed (" + share(total, disk) + " of " + human(disk) + ")" : "",
        human((long) rate), human(w), ratio, last ? "in " + duration((long) secs) : "ETA " + eta);
    if (bar) {
      int width = 30;
      int filled = (int) Math.min(width, Math.round(pct / 100 * width));
      out.print("\r" + label + " [" + "#".repeat(filled) + " ".repeat(width - filled) + "] " + figures + "  ");
      if (last) {
        out.println();
      }
    } else {
      out.println(label + ": " + figures);
    }
    out.flush();
  }

  /** "0.4%": how much of {@code whole} {@code part} is, to a tenth of a percent. */
  static String share(long part, long whole) {
    return String.format(Locale.ROOT, "%.1f%%", whole <= 0 ? 0 : 100.0 * part / whole);
  }

  static String human(long bytes) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = bytes;
    int u = 0;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return u == 0 ? bytes + " B" : String.format(Locale.ROOT, "%.1f %s", v, units[u]);
  }

  static String duration(long seconds) {
    return String.format(Locale.ROOT, "%d:%02d:%02d", seconds / 3600, (seconds / 60) % 60, seconds % 60);
  }

  /** Stops; {@code success} prints a final line with the elapsed time. */
  public void close(boolean success) {
    if (thread == null) {
      return;
    }
    running = false;
    thread.interrupt();
    try {
      thread.join(1000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (success) {
      print(true);
    } else if (bar) {
      out.println();
    }
  }

  @Override
  public void close() {
    close(false);
  }
}
