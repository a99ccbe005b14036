package io.zcow.cli.faults;

import static org.junit.jupiter.api.Assertions.fail;

import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * The chaos run (issue 21): backups back to back on a {@link LoopbackCluster} of three Kafka
 * nodes, ZooKeeper, two writers and three workers, for {@code zcow.chaos.minutes}, while a
 * {@link ChaosSchedule} drawn from {@code zcow.chaos.seed} kills, freezes, restarts and cuts off
 * roles ({@link ChaosFaults}). Every job that ends must exit 0 with its image identical to its
 * source ({@code qemu-img compare}), {@code qemu-img check} clean and no {@code .part} left; the
 * first that does not stops the faults and fails the run, with the seed and the fault log.
 *
 * <p>Never part of {@code mvn verify}: surefire excludes it and it runs only with {@code
 * zcow.chaos.enabled=true}, which the {@code chaos} profile sets:
 * <pre>
 * mvn -B -o -Pchaos -pl cli -am test -Dtest=ChaosRunTest -Dsurefire.failIfNoSpecifiedTests=false \
 *     -Dzcow.chaos.seed=1 -Dzcow.chaos.minutes=20
 * </pre>
 * Other properties: {@code zcow.chaos.jobs} (jobs at once, 2), {@code zcow.chaos.minDiskMiB} and
 * {@code maxDiskMiB} (8, 40: each job's size is drawn from the seed), {@code zcow.chaos.readRate}
 * (MB/s per worker, 1), {@code zcow.chaos.jobTimeoutS} (600). The seed also draws the disks: job n
 * of a seed has the same size and content in every run. Output: the schedule first, each fault
 * action and each job's row as they happen, then both tables and a summary, also written to
 * {@code cli/target/chaos-report-seed-S.md}; the cluster's logs stay in {@code
 * cli/target/chaos/seed-S/logs}.
 */
@EnabledIfSystemProperty(named = "zcow.chaos.enabled", matches = "true")
class ChaosRunTest {
  private static final long SEED = Long.getLong("zcow.chaos.seed", 1);
  private static final Duration RUN_FOR = Duration.ofMillis(
      (long) (Double.parseDouble(System.getProperty("zcow.chaos.minutes", "3")) * 60_000));
  private static final int PARALLEL = Integer.getInteger("zcow.chaos.jobs", 2);
  private static final int MIN_MIB = Integer.getInteger("zcow.chaos.minDiskMiB", 8);
  private static final int MAX_MIB = Integer.getInteger("zcow.chaos.maxDiskMiB", 40);
  private static final String READ_RATE = System.getProperty("zcow.chaos.readRate", "1");
  private static final Duration JOB_TIMEOUT = Duration.ofSeconds(Long.getLong("zcow.chaos.jobTimeoutS", 600));
  private static final String SESSION = "4s";

  private final List<ChaosJob> running = new CopyOnWriteArrayList<>();
  private final List<String> failures = new ArrayList<>();
  private LoopbackCluster cluster;
  private ChaosLog log;
  private Path dir;

  @Test
  void jobsBackToBackUnderSeededFaultsEndIdenticalAndClean() throws Exception {
    QemuImg.assumeAvailable();
    dir = Path.of("target", "chaos", "seed-" + SEED).toAbsolutePath();
    deleteTree(dir);
    Files.createDirectories(dir);
    List<ChaosSchedule.Fault> schedule = ChaosSchedule.draw(SEED, RUN_FOR);
    String header = String.format(Locale.ROOT, "Chaos run: seed %d, %s of jobs (%d at once, %d-%d MiB disks, "
        + "4 MiB ranges, workers at %s MB/s), %d faults scheduled at fixed offsets from the start",
        SEED, ChaosLog.tenths(RUN_FOR), PARALLEL, MIN_MIB, MAX_MIB, READ_RATE, schedule.size());
    System.out.println(header);
    schedule.forEach(f -> System.out.println("chaos scheduled " + f));

    Role[] writers = new Role[2];
    Role[] workers = new Role[ChaosSchedule.WORKERS];
    cluster = LoopbackCluster.startWithKafkaClients(dir, ChaosSchedule.BROKERS, writers.length + workers.length);
    ChaosFaults faults = null;
    try {
      for (int i = 0; i < writers.length; i++) {
        writers[i] = cluster.startWriterVia("writer-" + (char) ('a' + i), cluster.kafkaVia(i), cluster.zookeeper(),
            "--zookeeper-session-timeout", SESSION, "--range-timeout", "20s", "--kafka-loss-timeout", "6s",
            "--cache-size", "48m", "--job-cache", "4m");
      }
      for (int i = 0; i < workers.length; i++) {
        workers[i] = cluster.startWorkerVia("worker-" + (i + 1), cluster.kafkaVia(writers.length + i),
            "--max-read-rate", READ_RATE);
      }
      log = new ChaosLog(Instant.now());
      faults = new ChaosFaults(cluster, writers, workers, schedule, log, () -> List.copyOf(running));
      faults.start();
      runJobs(faults);
    } finally {
      if (faults != null) {
        faults.stop();
        Throwable error = faults.join(Duration.ofMinutes(5));
        if (error != null) {
          failures.add("the fault thread failed: " + error);
        }
      }
      String report = log == null ? header : log.write(Path.of("target", "chaos-report-seed-" + SEED + ".md"), header);
      System.out.println("\n" + report);
      cluster.close();
    }
    if (!failures.isEmpty()) {
      fail("chaos run with seed " + SEED + " failed (rerun: mvn -B -o -Pchaos -pl cli -am test -Dtest=ChaosRunTest "
          + "-Dsurefire.failIfNoSpecifiedTests=false -Dzcow.chaos.seed=" + SEED + " -Dzcow.chaos.minutes="
          + System.getProperty("zcow.chaos.minutes", "3") + "; logs in " + dir
          + "/logs):\n" + String.join("\n", failures) + "\n\nfault log:\n" + log.faultTable());
    }
  }

  /** Keeps {@link #PARALLEL} jobs running until the run's time is up, then lets the last ones end. */
  private void runJobs(ChaosFaults faults) {
    Instant until = log.start().plus(RUN_FOR);
    int n = 0;
    while (failures.isEmpty() && faults.error() == null) {
      boolean more = Instant.now().isBefore(until);
      while (more && running.size() < PARALLEL) {
        running.add(submit(++n));
      }
      if (!more && running.isEmpty()) {
        return;
      }
      if (!more) {
        faults.stop(); // the schedule is over: every fault still on ends now
      }
      for (ChaosJob job : running) {
        if (job.ended()) {
          running.remove(job);
          verify(job);
        } else if (Duration.between(job.submitted, Instant.now()).compareTo(JOB_TIMEOUT) > 0) {
          running.remove(job);
          failures.add(job.id + " still running after " + JOB_TIMEOUT + ": " + job.backup().describe());
          log.job(new ChaosLog.JobRow(job.id, job.size, "STUCK (no end within " + JOB_TIMEOUT.toSeconds() + " s)",
              false, -1, log.hitting(job.id, job.submitted, Instant.now()).size(), null,
              Duration.between(job.submitted, Instant.now())));
        }
      }
      FaultSuiteTest.sleep(250);
    }
    // A failure: no new job and no new fault; the jobs under way end (or time out) for the table.
    faults.stop();
    long deadline = System.nanoTime() + JOB_TIMEOUT.toNanos();
    for (ChaosJob job : running) {
      while (!job.ended() && System.nanoTime() < deadline) {
        FaultSuiteTest.sleep(250);
      }
      if (job.ended()) {
        verify(job);
      } else {
        log.job(new ChaosLog.JobRow(job.id, job.size, "not ended when the run stopped", false, -1,
            log.hitting(job.id, job.submitted, Instant.now()).size(), null, Duration.between(job.submitted,
            Instant.now())));
      }
    }
  }

  /** Job {@code n}: its size and content drawn from the seed and n alone. */
  private ChaosJob submit(int n) {
    Random rnd = new Random(SEED * 1_000_003L + n);
    long size = (long) (MIN_MIB + rnd.nextInt(MAX_MIB - MIN_MIB + 1)) << 20;
    String id = "chaos" + SEED + "-" + n;
    Path source = Disks.mixed(dir.resolve(id + ".raw"), size, rnd.nextLong());
    List<String> args = cluster.backupArgs(source, id + ".qcow2", id);
    Role backup = cluster.startBackup("backup-" + id, args);
    return new ChaosJob(id, source, cluster.targetRoot().resolve(id + ".qcow2"), size, args, backup);
  }

  /** The job's row: exit 0, identical, check clean and no .part, or a failure of the run. */
  private void verify(ChaosJob job) {
    Instant ended = Instant.now();
    Role backup = job.backup();
    int code = backup.process().exitValue();
    boolean exists = Files.exists(job.image);
    long lost = FaultReport.bytesLost(job.source, job.image);
    boolean clean = exists && QemuImg.check(job.image).clean();
    boolean part = Files.exists(job.part());
    boolean ok = code == 0 && exists && lost == 0 && clean && !part;
    String outcome = (ok ? "" : "FAILED: ") + "exit " + code + ", " + (!exists ? "no image"
        : (lost == 0 ? "identical" : "DIFFERS") + ", check " + (clean ? "clean" : "NOT CLEAN"))
        + (part ? ", .part left" : "") + (job.coordinators() > 1 ? ", " + job.coordinators() + " coordinators" : "");
    List<ChaosLog.Action> hit = log.hitting(job.id, job.submitted, ended);
    Duration ttr = null;
    if (!hit.isEmpty()) {
      Instant fault = hit.get(hit.size() - 1).when();
      Instant next = cluster.events().first(job.id, fault, JobEvents::isProgress).map(JobEvents.Event::time)
          .orElse(ended);
      ttr = Duration.between(fault, next).isNegative() ? Duration.ZERO : Duration.between(fault, next);
    }
    log.job(new ChaosLog.JobRow(job.id, job.size, outcome, ok, lost, hit.size(), ttr,
        Duration.between(job.submitted, ended)));
    if (!ok) {
      failures.add(job.id + ": " + outcome + backup.describe() + "\nevents: " + cluster.events().of(job.id));
      return;
    }
    try { // identical and clean: its bytes are not needed again
      Files.deleteIfExists(job.source);
      Files.deleteIfExists(job.image);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> all = Files.walk(root)) {
      for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
