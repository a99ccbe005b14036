package io.zcow.cli.faults;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What the chaos run saw: every fault action as it happened (time since the run's start, the
 * scheduled fault, the role it reached, what was done) and one row per finished job (size,
 * outcome, bytes lost, time to recover after the last fault that hit it, duration). Each line
 * is printed as it comes; {@link #write(Path, String)} writes both tables as markdown. Thread safe.
 */
final class ChaosLog {
  /** A fault action: {@code inject} starts a fault, otherwise it ends one (restart, SIGCONT, heal). */
  record Action(Instant when, Duration sinceStart, ChaosSchedule.Fault fault, boolean inject, String role,
      String done, String jobId) {}

  /** A job that ended. {@code ttr} is null when no fault hit it. */
  record JobRow(String job, long size, String outcome, boolean ok, long bytesLost, int faults, Duration ttr,
      Duration duration) {}

  private final Instant start;
  private final List<Action> actions = new ArrayList<>();
  private final List<JobRow> jobs = new ArrayList<>();

  ChaosLog(Instant start) {
    this.start = start;
  }

  Instant start() {
    return start;
  }

  synchronized Action action(ChaosSchedule.Fault fault, boolean inject, String role, String done, String jobId) {
    Instant now = Instant.now();
    Action a = new Action(now, Duration.between(start, now), fault, inject, role, done, jobId);
    actions.add(a);
    System.out.println("chaos " + row(a));
    return a;
  }

  synchronized void job(JobRow row) {
    jobs.add(row);
    System.out.println("chaos job " + row(row));
  }

  /** Injections (not ends) from {@code from} to {@code to} that reach the job: every fault but another job's coordinator. */
  synchronized List<Action> hitting(String jobId, Instant from, Instant to) {
    return actions.stream().filter(a -> a.inject() && a.done() != null && !a.done().startsWith("skipped")
        && !a.when().isBefore(from) && a.when().isBefore(to) && (a.jobId() == null || a.jobId().equals(jobId)))
        .toList();
  }

  synchronized List<JobRow> jobs() {
    return List.copyOf(jobs);
  }

  synchronized String faultTable() {
    StringBuilder b = new StringBuilder("| time | fault | role | action |\n|---:|---|---|---|\n");
    for (Action a : actions) {
      b.append(row(a)).append('\n');
    }
    return b.toString();
  }

  synchronized String jobTable() {
    StringBuilder b = new StringBuilder("| job | size | outcome | bytes lost | faults during | time to recover | "
        + "duration |\n|---|---:|---|---:|---:|---:|---:|\n");
    for (JobRow r : jobs) {
      b.append(row(r)).append('\n');
    }
    return b.toString();
  }

  /** One line: jobs, identical and clean, faults injected by kind. */
  synchronized String summary() {
    long ok = jobs.stream().filter(JobRow::ok).count();
    long injected = actions.stream().filter(a -> a.inject() && !a.done().startsWith("skipped")).count();
    long skipped = actions.stream().filter(a -> a.inject() && a.done().startsWith("skipped")).count();
    StringBuilder kinds = new StringBuilder();
    for (ChaosSchedule.Kind k : ChaosSchedule.Kind.values()) {
      long n = actions.stream().filter(a -> a.inject() && a.fault().kind() == k && !a.done().startsWith("skipped"))
          .count();
      kinds.append(kinds.length() == 0 ? "" : ", ").append(k.text).append(' ').append(n);
    }
    long lost = jobs.stream().mapToLong(r -> Math.max(0, r.bytesLost())).sum();
    return String.format(Locale.ROOT, "%d jobs ended, %d identical with check clean and exit 0, %d bytes lost; "
        + "%d faults injected (%s), %d skipped", jobs.size(), ok, lost, injected, kinds, skipped);
  }

  /** Writes {@code header}, the summary and both tables to {@code file}; returns the text. */
  synchronized String write(Path file, String header) {
    String text = header + "\n\n" + summary() + "\n\nFaults:\n\n" + faultTable() + "\nJobs:\n\n" + jobTable();
    try {
      Files.createDirectories(file.toAbsolutePath().getParent());
      Files.writeString(file, text);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return text;
  }

  private static String row(Action a) {
    return String.format(Locale.ROOT, "| %s | #%d %s (%s, at %s for %d s) | %s | %s |", tenths(a.sinceStart()),
        a.fault().n(), a.inject() ? a.fault().kind().text.replaceAll(", .*", "") : "end", a.fault().target(),
        ChaosSchedule.clock(a.fault().at()), a.fault().length().toSeconds(), a.role(), a.done());
  }

  private static String row(JobRow r) {
    return String.format(Locale.ROOT, "| %s | %d MiB | %s | %s | %d | %s | %s |", r.job(), r.size() >> 20,
        r.outcome(), r.bytesLost() < 0 ? "n/a" : Long.toString(r.bytesLost()), r.faults(), r.ttr() == null ? "n/a" : tenths(r.ttr()), tenths(r.duration()));
  }

  /** {@code m:ss.s} for times since the start, {@code s.s s} under a minute for spans. */
  static String tenths(Duration d) {
    long ms = Math.max(0, d.toMillis());
    return ms < 60_000 ? String.format(Locale.ROOT, "%.1f s", ms / 1000.0)
        : String.format(Locale.ROOT, "%d:%04.1f", ms / 60_000, (ms % 60_000) / 1000.0);
  }
}
