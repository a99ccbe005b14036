package io.zcow.cli.faults;

import io.zcow.qcow2.ImageReader;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The fault suite's table: one row per scenario run — scenario, faults injected, outcome, bytes
 * lost, time to recover. {@link #print()} writes it to stdout and as markdown to
 * {@code cli/target/fault-report.md} (rows of every test class that shares the report are kept;
 * the file is rewritten on each print). Shared by the scenarios of all test classes through
 * {@link #shared()}. Thread safe.
 */
public final class FaultReport {
  /** One row. {@code bytesLost} is 0 when the image reads back identical, -1 when not measured. */
  public record Row(String scenario, String faults, String outcome, long bytesLost, Duration timeToRecover) {}

  private static final FaultReport SHARED = new FaultReport(Path.of("target", "fault-report.md"));

  private final Path file;
  private final List<Row> rows = new ArrayList<>();

  public FaultReport(Path file) {
    this.file = file;
  }

  /** The report every scenario adds to; the file is {@code target/fault-report.md} of the module. */
  public static FaultReport shared() {
    return SHARED;
  }

  public synchronized void add(Row row) {
    rows.add(row);
  }

  /**
   * Adds a row for a scenario that ended with an image: bytes lost is 0 when {@code qemu-img
   * compare} finds it identical to {@code source}, otherwise the guest bytes from the first
   * difference to the end (a bound, from {@link ImageReader}); the outcome says whether {@code
   * qemu-img check} is clean. Returns the bytes lost (the caller asserts 0).
   */
  public long addImage(String scenario, String faults, Path source, Path image, Duration timeToRecover) {
    return addImage(scenario, faults, source, image, timeToRecover, "");
  }

  /**
   * As {@link #addImage(String, String, Path, Path, Duration)}, with {@code observed} (what the
   * scenario saw on the way: exit codes, which tasks were held and done again) after the image's
   * verdict in the outcome.
   */
  public long addImage(String scenario, String faults, Path source, Path image, Duration timeToRecover,
      String observed) {
    long lost = bytesLost(source, image);
    boolean clean = Files.exists(image) && QemuImg.check(image).clean();
    String outcome = !Files.exists(image) ? "no image"
        : (lost == 0 ? "identical" : "DIFFERS") + ", check " + (clean ? "clean" : "NOT CLEAN");
    add(new Row(scenario, faults, observed.isEmpty() ? outcome : outcome + "; " + observed, lost, timeToRecover));
    return lost;
  }

  /** Guest bytes of {@code image} that may differ from {@code source}: 0 when identical. */
  public static long bytesLost(Path source, Path image) {
    try {
      long size = Files.size(source);
      if (!Files.exists(image)) {
        return size;
      }
      if (QemuImg.compare(source, image)) {
        return 0;
      }
      try {
        long first = ImageReader.firstDifference(source, image);
        return first < 0 ? 0 : size - first;
      } catch (RuntimeException corrupt) {
        return size;
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public synchronized List<Row> rows() {
    return List.copyOf(rows);
  }

  /** The table as markdown. */
  public synchronized String markdown() {
    StringBuilder b = new StringBuilder();
    b.append("| scenario | faults injected | outcome | bytes lost | time to recover |\n");
    b.append("|---|---|---|---:|---:|\n");
    for (Row r : rows) {
      b.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s |%n", r.scenario(), r.faults(), r.outcome(),
          r.bytesLost() < 0 ? "n/a" : Long.toString(r.bytesLost()), seconds(r.timeToRecover())));
    }
    return b.toString();
  }

  private static String seconds(Duration d) {
    return d == null ? "n/a" : String.format(Locale.ROOT, "%.1f s", d.toMillis() / 1000.0);
  }

  /** Prints the table to stdout and writes it to the report file. */
  public synchronized void print() {
    String table = markdown();
    System.out.println("fault suite:\n" + table);
    try {
      Files.createDirectories(file.toAbsolutePath().getParent());
      Files.writeString(file, table);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
