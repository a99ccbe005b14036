package io.zcow.cli.faults;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The fault suite: a real multi-process cluster on loopback ({@link LoopbackCluster}: a broker and
 * ZooKeeper as processes of their own, two writers sharing the target root, three throttled
 * workers, a coordinator per job) and faults injected while a backup runs. Every scenario ends
 * with the image identical to its source and {@code qemu-img check} clean (or a clean FAILED and
 * nothing at the target path), and adds a row to {@link FaultReport}: scenario, faults, outcome,
 * bytes lost, time to recover (from the fault to the job's next RANGE_DONE on zcow.events).
 *
 * <p>One cluster serves every scenario: what a scenario kills it starts again. Sizes and seeds
 * come from system properties so {@code -Pstress} runs the same scenarios on multi-GiB disks:
 * {@code zcow.faults.diskMiB} (24), {@code zcow.faults.rangeSize} (4m), {@code
 * zcow.faults.readRate} (MB/s per worker, 1), {@code zcow.faults.seeds} (1 in CI, 1,2,3 under
 * {@code -Pstress}: the worker scenario runs once per seed, which picks the disk's content, which
 * worker dies and when; the other scenarios have a seed each).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class FaultSuiteTest {
  private static final long DISK = Long.getLong("zcow.faults.diskMiB", 24) << 20;
  static final String RANGE_SIZE = System.getProperty("zcow.faults.rangeSize", "4m");
  private static final String READ_RATE = System.getProperty("zcow.faults.readRate", "1");
  static final Duration JOB_TIMEOUT = Duration.ofSeconds(Long.getLong("zcow.faults.jobTimeoutS", 240));
  static final String SESSION = "4s";
  private static final int MANY_JOBS = Integer.getInteger("zcow.faults.manyJobs", 12);
  private static final long MANY_JOBS_DISK = Long.getLong("zcow.faults.manyJobsDiskMiB", 4) << 20;
  private static final String MANY_JOBS_RANGE_SIZE = System.getProperty("zcow.faults.manyJobsRangeSize", "1m");
  private static final Duration BROKER_OUTAGE = Duration.ofSeconds(Long.getLong("zcow.faults.brokerOutageS", 60));
  private static final Pattern LEADER = WriterLog.LEADER;
  private static final Pattern WAITING_FOR_LOCK = WriterLog.WAITING_FOR_LOCK;
  private static final Pattern TERM_ENDED = WriterLog.TERM_ENDED;

  @TempDir
  static Path dir;

  private LoopbackCluster cluster;
  private final Role[] writers = new Role[2];
  private final Role[] workers = new Role[3];
  private int jobs;

  static List<Long> seeds() {
    return Arrays.stream(System.getProperty("zcow.faults.seeds", "1").split(",")).map(String::trim)
        .map(Long::parseLong).toList();
  }

  @BeforeAll
  void startCluster() throws Exception {
    QemuImg.assumeAvailable();
    cluster = LoopbackCluster.start(dir);
    for (int i = 0; i < writers.length; i++) {
      writers[i] = startWriter(i);
    }
    for (int i = 0; i < workers.length; i++) {
      workers[i] = startWorker(i);
    }
  }

  @AfterAll
  void stopCluster() {
    FaultReport.shared().print();
    if (cluster != null) {
      cluster.close();
    }
  }

  private Role startWriter(int i) {
    // A short session so a stopped leader is replaced in seconds; a range without progress for
    // 20 s is queued again (a task of a killed worker is otherwise locked for the share lock time).
    // A 48 MiB cache budget in 4 MiB slices: twelve jobs run side by side, none waits QUEUED.
    return cluster.startWriter("writer-" + (char) ('a' + i), "--zookeeper-session-timeout", SESSION,
        "--range-timeout", "20s", "--cache-size", "48m", "--job-cache", "4m");
  }

  private Role startWorker(int i) {
    return cluster.startWorker("worker-" + (i + 1), "--max-read-rate", READ_RATE);
  }

  /** A job under way: its source, its coordinator, its target, its id. */
  private record Job(String id, Path source, Path image, Role backup) {}

  private Job submit(String name, long seed, String... extra) {
    return submit(name, seed, DISK, RANGE_SIZE, extra);
  }

  private Job submit(String name, long seed, long size, String rangeSize, String... extra) {
    int n = ++jobs;
    String id = name + "-" + seed;
    Path source = Disks.mixed(dir.resolve(id + ".raw"), size, seed * 1000 + n);
    String target = id + ".qcow2";
    List<String> args = cluster.backupArgs(source, target, id, extra);
    args.set(args.indexOf("--range-size") + 1, rangeSize); // -Pstress asks for larger ranges
    Role backup = cluster.startBackup("backup-" + id, args);
    return new Job(id, source, cluster.targetRoot().resolve(target), backup);
  }

  /** Waits until the job has completed a range: the next fault lands mid-job. */
  private void underWay(Job job) {
    cluster.events().awaitRangesDone(job.id(), 1, JOB_TIMEOUT);
    assertTrue(job.backup().isAlive(), "the job is still running when the fault comes: " + job.backup().describe());
    assertFalse(Files.exists(job.image()), "no image before the job ends");
  }

  private Duration recovered(Job job, Instant fault) {
    Instant next = cluster.events().awaitProgress(job.id(), fault, JOB_TIMEOUT);
    return Duration.between(fault, next).isNegative() ? Duration.ZERO : Duration.between(fault, next);
  }

  /** The job ends DONE: the image is identical and clean; adds the report row. */
  private void finishesIdentical(Job job, String scenario, String faults, Duration ttr) {
    finishesIdentical(job, scenario, faults, ttr, "");
  }

  /** As above, with what the scenario observed on the way added to the row's outcome. */
  private void finishesIdentical(Job job, String scenario, String faults, Duration ttr, String observed) {
    int code = job.backup().await(JOB_TIMEOUT);
    assertEquals(0, code, job.backup().describe() + cluster.logsOfRoles());
    long lost = FaultReport.shared().addImage(scenario, faults, job.source(), job.image(), ttr, observed);
    QemuImg.assertClean(job.image());
    QemuImg.assertIdentical(job.source(), job.image());
    assertEquals(0, lost);
    assertFalse(Files.exists(part(job)), "no .part left beside the image");
  }

  private static Path part(Job job) {
    return job.image().resolveSibling(job.image().getFileName() + ".part");
  }

  /** The writer that leads now: the live one that logged the highest epoch. */
  private int leader() {
    long deadline = System.nanoTime() + JOB_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      int best = -1;
      long bestEpoch = -1;
      for (int i = 0; i < writers.length; i++) {
        long e = lastEpoch(writers[i]);
        if (writers[i].isAlive() && e > bestEpoch) {
          best = i;
          bestEpoch = e;
        }
      }
      if (best >= 0) {
        return best;
      }
      sleep(100);
    }
    fail("no writer leads: " + cluster.logsOfRoles());
    return -1;
  }

  private static long lastEpoch(Role writer) {
    return writer.lastNumber(LEADER);
  }

  private void healWorkers() {
    for (int i = 0; i < workers.length; i++) {
      if (!workers[i].isAlive()) {
        workers[i] = cluster.restart(workers[i]);
      }
    }
  }

  private void healWriters() {
    for (int i = 0; i < writers.length; i++) {
      if (!writers[i].isAlive()) {
        writers[i] = cluster.restart(writers[i]);
      }
    }
  }

  @Order(1)
  @ParameterizedTest(name = "seed {0}")
  @MethodSource("seeds")
  void aWorkerKilledMidRangeThenAllWorkersThenNewWorkers(long seed) {
    Random rnd = new Random(seed);
    Job job = submit("workers", seed);
    underWay(job);
    sleep(rnd.nextInt(2000));
    List<Held> holding = awaitHeld(job);
    Held victim = holding.get(rnd.nextInt(holding.size()));
    long victimPid = workers[victim.worker()].pid();
    Instant first = Instant.now();
    workers[victim.worker()].kill();
    Duration ttrOne = recovered(job, first);

    List<Held> heldAtKill = held(job);
    List<Role> killed = new ArrayList<>();
    for (Role w : workers) {
      if (w.isAlive()) {
        w.kill();
        killed.add(w);
      }
    }
    Instant all = Instant.now();
    sleep(2000);
    healWorkers();
    Duration ttrAll = recovered(job, all);
    int code = job.backup().await(JOB_TIMEOUT);
    assertEquals(0, code, job.backup().describe() + cluster.logsOfRoles());
    String again = doneAgain(job, victim, first);
    List<String> doneByNew = new ArrayList<>();
    for (Held h : heldAtKill) {
      doneByNew.add(doneAgain(job, h, all));
    }
    finishesIdentical(job, "worker killed mid-range (seed " + seed + ")", "kill -9 worker-" + (victim.worker() + 1)
        + " (pid " + victimPid + ") while it held range " + victim.attempt().range(), ttrOne, "exit " + code + "; " + again);
    FaultReport.shared().addImage("all workers killed, new ones started (seed " + seed + ")", "kill -9 of the "
        + killed.size() + " others; " + workers.length + " new workers 2 s later", job.source(), job.image(), ttrAll,
        "same job, exit " + code + "; " + (heldAtKill.isEmpty() ? "no task was held at the kill"
            : heldAtKill.size() + " held at the kill: " + String.join("; ", doneByNew)));
  }

  /** A live worker seen holding a task of the job: its attempt started (RangeStarted) and is not done. */
  private record Held(int worker, JobEvents.Attempt attempt) {}

  /**
   * The tasks of the job live workers hold now: attempts open on the chunks topic (RangeStarted,
   * no RangeDone) of ranges the writer has not reported done, each claimed by the worker whose
   * log started that attempt and has not ended it.
   */
  private List<Held> held(Job job) {
    List<Held> out = new ArrayList<>();
    for (JobEvents.Attempt a : cluster.events().open(job.id())) {
      if (cluster.events().rangeDone(job.id(), a.range())) {
        continue;
      }
      for (int i = 0; i < workers.length; i++) {
        if (workers[i].isAlive() && holds(workers[i], job.id(), a)) {
          out.add(new Held(i, a));
        }
      }
    }
    return out;
  }

  private static boolean holds(Role worker, String jobId, JobEvents.Attempt a) {
    String log = worker.stderr();
    int at = log.indexOf("(attempt " + a.attemptId() + ",");
    if (at < 0) {
      return false;
    }
    String tag = "[job=" + jobId + " range=" + a.range() + "]";
    String after = log.substring(at);
    return !after.contains(tag + " done") && !after.contains(tag + " released")
        && !after.contains(tag + " cancelled");
  }

  private List<Held> awaitHeld(Job job) {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (System.nanoTime() < deadline) {
      List<Held> h = held(job);
      if (!h.isEmpty()) {
        return h;
      }
      sleep(100);
    }
    fail("no worker was seen holding a task of " + job.id() + " for 60 s; attempts: "
        + cluster.events().attempts(job.id()) + cluster.logsOfRoles());
    return null;
  }

  /**
   * Asserts that the task {@code h} held when it was killed at {@code fault} died with it (its
   * attempt never sent RangeDone) and that the range was done again by another attempt; says by
   * whom and when.
   */
  private String doneAgain(Job job, Held h, Instant fault) {
    JobEvents events = cluster.events();
    long range = h.attempt().range();
    JobEvents.Event done = events.await(job.id(), fault, e -> e.kind() == io.zcow.proto.EventKind.EVENT_KIND_RANGE_DONE
        && e.range() == range, JOB_TIMEOUT);
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    JobEvents.Attempt by = null;
    while (by == null && System.nanoTime() < deadline) {
      by = events.attempts(job.id()).stream().filter(a -> a.range() == range && a.done()
          && !a.attemptId().equals(h.attempt().attemptId())).findFirst().orElse(null);
      sleep(100);
    }
    assertTrue(by != null, "range " + range + " was done by another attempt: " + events.attempts(job.id()));
    assertFalse(events.attempts(job.id()).stream().anyMatch(a -> a.attemptId().equals(h.attempt().attemptId())
        && a.done()), "the killed worker's attempt at range " + range + " never completed");
    String who = "another worker";
    for (Role r : cluster.roles()) {
      if (r.name().startsWith("worker") && r.stderr().contains("(attempt " + by.attemptId() + ",")) {
        who = r.name() + " (pid " + r.pid() + ")";
      }
    }
    return String.format(java.util.Locale.ROOT, "range %d held by worker-%d (RangeStarted, no RangeDone) done again "
        + "by %s %.1f s after the kill", range, h.worker() + 1, who,
        Duration.between(fault, done.time()).toMillis() / 1000.0);
  }

  @Order(2)
  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = 3)
  void theLeaderWriterKilledTheStandbyFinishes(long seed) {
    Random rnd = new Random(seed);
    Job job = submit("leader-killed", seed);
    underWay(job);
    sleep(rnd.nextInt(2000));
    int leader = leader();
    long epoch = lastEpoch(writers[leader]);
    Role standby = writers[1 - leader];
    Instant fault = Instant.now();
    writers[leader].kill();
    Duration ttr = recovered(job, fault);
    assertTrue(lastEpoch(standby) > epoch, "the standby took over: " + standby.describe());
    finishesIdentical(job, "leader writer killed (seed " + seed + ")", "kill -9 of the leader writer", ttr);
    healWriters();
  }

  @Order(3)
  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = 7)
  void theLeaderStoppedLongerThanItsSessionIsFencedByItsLock(long seed) throws Exception {
    Job job = submit("leader-stopped", seed);
    underWay(job);
    int leader = leader();
    Role old = writers[leader];
    Role standby = writers[1 - leader];
    long oldEpoch = lastEpoch(old);
    int waitedBefore = standby.countLog(WAITING_FOR_LOCK);

    Instant fault = Instant.now();
    old.stop();
    // The session (4 s) expires: the standby is elected, and waits for the lock the frozen leader holds.
    standby.awaitLog(Pattern.compile("leader with epoch " + (oldEpoch + 1) + "\\b"), Duration.ofSeconds(60));
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (standby.countLog(WAITING_FOR_LOCK) <= waitedBefore) {
      assertTrue(System.nanoTime() < deadline, "the new leader waits for the lock: " + standby.describe());
      sleep(100);
    }
    FileState frozen = FileState.of(part(job));
    sleep(2000);
    assertEquals(frozen, FileState.of(part(job)),
        "the new leader writes nothing while the stopped leader holds the target's lock");
    assertFalse(Files.exists(job.image()));

    // Hold the new leader still for a moment, so that whatever the file does next is the old leader's.
    standby.stop();
    old.cont();
    Duration stopped = Duration.between(fault, Instant.now());
    try {
      old.awaitLog(TERM_ENDED, Duration.ofSeconds(3));
      sleep(500);
      assertEquals(frozen, FileState.of(part(job)),
          "after SIGCONT the deposed leader issues no write before it lets go of the lock");
    } finally {
      standby.cont();
    }
    Duration ttr = recovered(job, fault);
    finishesIdentical(job, "leader writer stopped longer than its session", String.format(java.util.Locale.ROOT,
        "SIGSTOP of the leader writer for %.1f s (session %s), then SIGCONT", stopped.toMillis() / 1000.0,
        SESSION), ttr);
    assertTrue(old.isAlive(), "the old leader lives on as a standby");
  }

  @Order(4)
  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = 11)
  void theBrokerRestartedMidJob(long seed) {
    Job job = submit("broker-restart", seed);
    underWay(job);
    Instant fault = Instant.now();
    cluster.kafkaServer().kill();
    sleep(1000);
    cluster.restart(cluster.kafkaServer());
    Duration down = Duration.between(fault, Instant.now()); // restart returns once the broker serves
    Duration ttr = recovered(job, fault);
    finishesIdentical(job, "broker restarted mid-job", String.format(java.util.Locale.ROOT,
        "kill -9 of the broker, restarted on its port and data (down %.1f s)", down.toMillis() / 1000.0), ttr);
  }

  /**
   * The broker killed and kept down for {@code zcow.faults.brokerOutageS} (60 s), longer than a
   * task's lock and the writers' range timeout, then started on its port and data. The job must
   * end identical with the suite's settings (range timeout 20 s, the default five attempts, the
   * workers' defaults): re-issues made while no worker could report are free, and workers replace
   * share consumers that went bad. The time to recover is counted from the broker serving again.
   */
  @Order(5)
  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = 19)
  void theBrokerDownForAMinuteMidJob(long seed) {
    Job job = submit("broker-down", seed);
    underWay(job);
    int doneBefore = cluster.events().rangesDone(job.id());
    Pattern replaced = Pattern.compile("share consumer \\d+ replaced");
    int replacedBefore = 0;
    for (Role w : workers) {
      replacedBefore += w.countLog(replaced);
    }
    Instant fault = Instant.now();
    cluster.kafkaServer().kill();
    sleep(BROKER_OUTAGE.toMillis());
    cluster.restart(cluster.kafkaServer());
    Instant back = Instant.now(); // restart returns once the broker serves
    Duration down = Duration.between(fault, back);
    Duration ttr = recovered(job, back);
    int code = job.backup().await(JOB_TIMEOUT);
    int replacedAfter = 0;
    for (Role w : workers) {
      replacedAfter += w.countLog(replaced);
    }
    long requeued = cluster.events().of(job.id()).stream().filter(e -> !e.time().isBefore(fault)
        && e.kind() == io.zcow.proto.EventKind.EVENT_KIND_RANGE_REQUEUED).count();
    int total = totalRanges(job);
    finishesIdentical(job, "broker down for a minute mid-job", String.format(java.util.Locale.ROOT,
        "kill -9 of the broker, %d s later restarted on its port and data (down %.1f s in all); recovery "
        + "counted from the restart", BROKER_OUTAGE.toSeconds(), down.toMillis() / 1000.0), ttr, String.format(
        java.util.Locale.ROOT, "exit %d; %d of %d ranges done before the kill; %d re-queues after it; %d share "
        + "consumers replaced by the workers", code, doneBefore, total, requeued, replacedAfter - replacedBefore));
  }

  private static int totalRanges(Job job) {
    return totalRanges(job, RANGE_SIZE);
  }

  private static int totalRanges(Job job, String rangeSize) {
    try {
      long size = Files.size(job.source());
      long range = io.zcow.cli.SizeValue.parse(rangeSize).bytes();
      return (int) ((size + range - 1) / range);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  @Order(6)
  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = 13)
  void zooKeeperRestartedMidJob(long seed) {
    Job job = submit("zookeeper-restart", seed);
    underWay(job);
    Instant fault = Instant.now();
    cluster.zooKeeperServer().kill();
    sleep(1000);
    cluster.restart(cluster.zooKeeperServer());
    Duration ttr = recovered(job, fault);
    finishesIdentical(job, "ZooKeeper restarted mid-job", "kill -9 of ZooKeeper, restarted on its port and data",
        ttr);
  }

  @Order(7)
  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = 17)
  void theCoordinatorKilledAndRunAgainWithTheSameJobId(long seed) {
    Job job = submit("coordinator", seed, "--window", "2");
    underWay(job);
    Instant fault = Instant.now();
    job.backup().kill();
    assertFalse(Files.exists(job.image()));
    // Away for a checkpoint interval or two: what completed meanwhile is committed, and not resubmitted.
    sleep(2500);
    Role again = cluster.startBackup("backup-" + job.id() + "-again", job.backup().args());
    Duration ttr = recovered(job, fault);
    finishesIdentical(new Job(job.id(), job.source(), job.image(), again), "coordinator killed, run again",
        "kill -9 of the coordinator; the same command 2.5 s later", ttr);
    // The writer paces the job: the re-run finds it running and follows it, submitting nothing.
    assertTrue(again.stderr().contains("was submitted before: followed, not submitted again"), again.describe());
  }

  /**
   * {@code zcow.faults.manyJobs} (12) small jobs submitted at once to the one writer group, which
   * runs them side by side (cache budget 48 MiB in 4 MiB slices); a worker seen holding a task is
   * killed a few ranges in, the leader writer a few ranges later while jobs are unfinished. Every
   * job must end with exit 0 and an identical, clean image: one job's faults never stop another.
   */
  @Order(8)
  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = 23)
  void manyJobsAtOnceWithAWorkerAndTheLeaderWriterKilled(long seed) {
    Random rnd = new Random(seed);
    List<Job> many = new ArrayList<>();
    for (int i = 0; i < MANY_JOBS; i++) {
      many.add(submit("many" + (i + 1), seed, MANY_JOBS_DISK, MANY_JOBS_RANGE_SIZE));
    }
    int total = many.stream().mapToInt(j -> totalRanges(j, MANY_JOBS_RANGE_SIZE)).sum();
    awaitRangesDone(many, Math.max(2, total / 8));
    List<Held> holding = new ArrayList<>();
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (holding.isEmpty() && System.nanoTime() < deadline) {
      many.forEach(j -> holding.addAll(held(j)));
      sleep(100);
    }
    assertFalse(holding.isEmpty(), "a worker is seen holding a task" + cluster.logsOfRoles());
    Held victim = holding.get(rnd.nextInt(holding.size()));
    Job victimJob = many.stream().filter(j -> j.id().equals(victim.attempt().jobId())).findFirst().orElseThrow();
    Instant workerFault = Instant.now();
    workers[victim.worker()].kill();

    awaitRangesDone(many, Math.max(4, total / 4));
    int leader = leader();
    long epoch = lastEpoch(writers[leader]);
    Role standby = writers[1 - leader];
    long unfinished = many.stream().filter(j -> j.backup().isAlive()).count();
    assertTrue(unfinished > 0, "jobs still run when the leader is killed");
    Instant leaderFault = Instant.now();
    writers[leader].kill();
    healWorkers();
    Duration ttr = recoveredAny(many, leaderFault);
    long lost = 0;
    int identical = 0;
    int clean = 0;
    int exitZero = 0;
    for (Job j : many) {
      int code = j.backup().await(JOB_TIMEOUT);
      assertEquals(0, code, j.id() + ": " + j.backup().describe() + cluster.logsOfRoles());
      exitZero++;
      long l = FaultReport.bytesLost(j.source(), j.image());
      lost += l;
      identical += l == 0 ? 1 : 0;
      clean += QemuImg.check(j.image()).clean() ? 1 : 0;
      assertEquals(0, l, j.id() + " reads back identical");
      QemuImg.assertClean(j.image());
      assertFalse(Files.exists(part(j)), "no .part left beside " + j.image());
    }
    assertTrue(lastEpoch(standby) > epoch, "the standby took over: " + standby.describe());
    String again = doneAgain(victimJob, victim, workerFault);
    FaultReport.shared().add(new FaultReport.Row(MANY_JOBS + " jobs at once on one writer group (seed " + seed + ")",
        String.format(java.util.Locale.ROOT, "%d jobs of %d MiB (%d ranges); kill -9 worker-%d while it held a range "
            + "of %s; kill -9 of the leader writer (epoch %d) %.1f s later, %d jobs unfinished", MANY_JOBS,
            MANY_JOBS_DISK >> 20, total, victim.worker() + 1, victimJob.id(), epoch,
            Duration.between(workerFault, leaderFault).toMillis() / 1000.0, unfinished),
        String.format(java.util.Locale.ROOT, "%d of %d exit 0, %d identical, %d check clean; standby led from "
            + "epoch %d; %s", exitZero, MANY_JOBS, identical, clean, lastEpoch(standby), again), lost, ttr));
    healWriters();
  }

  private void awaitRangesDone(List<Job> many, int n) {
    long deadline = System.nanoTime() + JOB_TIMEOUT.toNanos();
    while (many.stream().mapToInt(j -> cluster.events().rangesDone(j.id())).sum() < n) {
      assertTrue(System.nanoTime() < deadline, n + " ranges done within " + JOB_TIMEOUT + cluster.logsOfRoles());
      sleep(100);
    }
  }

  /** From {@code fault} to the next progress of any of the jobs. */
  private Duration recoveredAny(List<Job> many, Instant fault) {
    long deadline = System.nanoTime() + JOB_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      Instant first = null;
      for (Job j : many) {
        Instant t = cluster.events().first(j.id(), fault, JobEvents::isProgress).map(JobEvents.Event::time)
            .orElse(null);
        if (t != null && (first == null || t.isBefore(first))) {
          first = t;
        }
      }
      if (first != null) {
        return Duration.between(fault, first);
      }
      sleep(100);
    }
    fail("no job progressed within " + JOB_TIMEOUT + " of " + fault + cluster.logsOfRoles());
    return null;
  }

  static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
