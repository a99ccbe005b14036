package io.zcow.cli.faults;

import static io.zcow.cli.faults.WriterLog.GAVE_UP;
import static io.zcow.cli.faults.WriterLog.KAFKA_SILENT;
import static io.zcow.cli.faults.WriterLog.LEADER;
import static io.zcow.cli.faults.WriterLog.REJOINED;
import static io.zcow.cli.faults.WriterLog.SUSPENDED;
import static io.zcow.cli.faults.WriterLog.TERM_ENDED;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import io.zcow.testkit.TcpProxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * Network partitions of the leader writer, one side at a time, on a {@link LoopbackCluster} whose
 * two writers reach Kafka and ZooKeeper each through {@link TcpProxy proxies} of their own (the
 * broker advertises an extra listener at each writer's Kafka proxy, so a cut really cuts that
 * writer off after bootstrap, not just its first connection). Workers and coordinators reach both
 * directly. Each row cuts the leader's proxy mid-job (live connections dropped, new ones
 * blackholed), waits until the standby leads, heals, and must end with the image identical and
 * clean; its row in {@link FaultReport} is built from what the test measured.
 *
 * <p>Sizes from system properties: {@code zcow.faults.partitionDiskMiB} (24), {@code
 * zcow.faults.partitionReadRate} (MB/s per worker, 0.5: the job still runs when the cut comes),
 * {@code zcow.faults.rangeSize} (4m).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class PartitionScenarioTest {
  private static final long DISK = Long.getLong("zcow.faults.partitionDiskMiB", 24) << 20;
  private static final String READ_RATE = System.getProperty("zcow.faults.partitionReadRate", "0.5");
  private static final String RANGE_SIZE = FaultSuiteTest.RANGE_SIZE;
  private static final Duration TIMEOUT = FaultSuiteTest.JOB_TIMEOUT;
  private static final String SESSION = FaultSuiteTest.SESSION;
  private static final String KAFKA_LOSS = "6s";

  @TempDir
  static Path dir;

  private LoopbackCluster cluster;
  private final Role[] writers = new Role[2];
  private final TcpProxy[] zooKeeperProxies = new TcpProxy[2];

  @BeforeAll
  void startCluster() throws Exception {
    QemuImg.assumeAvailable();
    cluster = LoopbackCluster.startWithKafkaProxies(dir, writers.length);
    for (int i = 0; i < writers.length; i++) {
      zooKeeperProxies[i] = cluster.zooKeeperProxy();
      writers[i] = cluster.startWriterVia("writer-" + (char) ('a' + i), cluster.kafkaProxy(i).address(),
          zooKeeperProxies[i].address(), "--zookeeper-session-timeout", SESSION, "--range-timeout", "20s",
          "--kafka-loss-timeout", KAFKA_LOSS);
    }
    for (int i = 1; i <= 3; i++) {
      cluster.startWorker("worker-" + i, "--max-read-rate", READ_RATE);
    }
  }

  @AfterAll
  void stopCluster() {
    FaultReport.shared().print();
    if (cluster != null) {
      cluster.close();
    }
  }

  private record Job(String id, Path source, Path image, Role backup) {
    Path part() {
      return image.resolveSibling(image.getFileName() + ".part");
    }
  }

  private Job submitUnderWay(String name, long seed) {
    String id = name + "-" + seed;
    Path source = Disks.mixed(dir.resolve(id + ".raw"), DISK, seed);
    List<String> args = cluster.backupArgs(source, id + ".qcow2", id);
    args.set(args.indexOf("--range-size") + 1, RANGE_SIZE);
    Job job = new Job(id, source, cluster.targetRoot().resolve(id + ".qcow2"), cluster.startBackup("backup-" + id, args));
    cluster.events().awaitRangesDone(id, 1, TIMEOUT);
    assertTrue(job.backup().isAlive(), "the job still runs when the cut comes: " + job.backup().describe());
    return job;
  }

  /** Who leads now and who stands by. */
  private record Leadership(int index, Role leader, Role standby, long epoch) {}

  private Leadership leadership() {
    int i = leader();
    return new Leadership(i, writers[i], writers[1 - i], writers[i].lastNumber(LEADER));
  }

  /** The live writer that logged the highest epoch. */
  private int leader() {
    long deadline = System.nanoTime() + TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      long e0 = writers[0].lastNumber(LEADER);
      long e1 = writers[1].lastNumber(LEADER);
      if (Math.max(e0, e1) >= 0) {
        return e0 > e1 ? 0 : 1;
      }
      sleep(100);
    }
    fail("no writer leads" + cluster.logsOfRoles());
    return -1;
  }

  /** Waits until {@code pattern} matches {@code role}'s log more than {@code before} times; returns when it was seen. */
  private Instant awaitMore(Role role, Pattern pattern, int before, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (role.countLog(pattern) <= before) {
      if (System.nanoTime() > deadline) {
        fail(role.name() + " did not log /" + pattern + "/ within " + timeout + "; its threads then:\n"
            + threadDump(role) + cluster.logsOfRoles());
      }
      sleep(50);
    }
    return Instant.now();
  }

  /** The role's threads (jcmd Thread.print), to show what a role that does not log is waiting in. */
  private static String threadDump(Role role) {
    try {
      Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(),
          Long.toString(role.pid()), "Thread.print").redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
      p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS);
      return out;
    } catch (Exception e) {
      return "(no thread dump: " + e + ")";
    }
  }

  /** Waits until {@code standby} leads with an epoch above {@code epoch}; returns when it was seen. */
  private Instant awaitTakeover(Role standby, long epoch) {
    long deadline = System.nanoTime() + TIMEOUT.toNanos();
    while (standby.lastNumber(LEADER) <= epoch) {
      if (System.nanoTime() > deadline) {
        fail(standby.name() + " did not take over from epoch " + epoch + cluster.logsOfRoles());
      }
      sleep(50);
    }
    return Instant.now();
  }

  private void finishesIdentical(Job job, String scenario, String faults, Duration ttr, String observed) {
    int code = job.backup().await(TIMEOUT);
    assertEquals(0, code, job.backup().describe() + cluster.logsOfRoles());
    long lost = FaultReport.shared().addImage(scenario, faults, job.source(), job.image(), ttr,
        "exit " + code + "; " + observed);
    QemuImg.assertClean(job.image());
    QemuImg.assertIdentical(job.source(), job.image());
    assertEquals(0, lost);
    assertFalse(Files.exists(job.part()), "no .part left beside the image");
  }

  @Order(1)
  @Test
  void theLeaderCutOffFromKafkaGivesUpLeadershipAndTheStandbyFinishes() {
    Job job = submitUnderWay("kafka-cut", 31);
    Leadership now = leadership();
    Role old = now.leader();
    Role standby = now.standby();
    long epoch = now.epoch();
    TcpProxy proxy = cluster.kafkaProxy(now.index());
    long throughProxy = proxy.bytesForwarded();
    assertTrue(throughProxy > 100 << 10, "the leader's chunks came through its proxy (the broker advertises it): "
        + throughProxy + " bytes");
    int silentBefore = old.countLog(KAFKA_SILENT);
    int gaveUpBefore = old.countLog(GAVE_UP);
    int rejoinedBefore = old.countLog(REJOINED);

    Instant fault = Instant.now();
    proxy.cut(TcpProxy.Mode.BLACKHOLE);
    Instant silent = awaitMore(old, KAFKA_SILENT, silentBefore, Duration.ofSeconds(30));
    long forwardedWhileCut = proxy.bytesForwarded();
    Instant gaveUp = awaitMore(old, GAVE_UP, gaveUpBefore, Duration.ofSeconds(60));
    Instant takeover = awaitTakeover(standby, epoch);
    awaitMore(old, REJOINED, rejoinedBefore, Duration.ofSeconds(30));
    assertEquals(forwardedWhileCut, proxy.bytesForwarded(), "nothing passed the cut");
    long tries = proxy.arrivedWhileCut();
    assertTrue(tries > 0, "the cut-off leader kept trying to reach the broker through its proxy");
    Duration ttr = Duration.between(fault, cluster.events().awaitProgress(job.id(), fault, TIMEOUT));
    proxy.heal();
    Duration bound = Duration.parse("PT" + KAFKA_LOSS.toUpperCase(Locale.ROOT));
    Duration toGiveUp = Duration.between(fault, gaveUp);
    finishesIdentical(job, "leader writer cut off from Kafka (ZooKeeper fine)", String.format(Locale.ROOT,
        "the leader's Kafka proxy cut mid-job (%d KiB had passed it; live connections dropped, new ones "
        + "blackholed) until the standby led; loss bound %s", throughProxy >> 10, KAFKA_LOSS), ttr,
        String.format(Locale.ROOT, "probe unanswered after %.1f s; gave up leadership (epoch %d) %.1f s after "
        + "the cut; standby led %.1f s after the cut; %d connection attempts blackholed, 0 bytes passed; the "
        + "old leader rejoined as a candidate", secs(fault, silent), epoch, toGiveUp.toMillis() / 1000.0,
        secs(fault, takeover), tries));
    // The bound is counted from the last answer; one probe wait and the term's close come on top.
    assertTrue(toGiveUp.compareTo(bound.plusSeconds(10)) < 0, "gave up within the bound: " + toGiveUp);
    assertTrue(old.isAlive(), "the old leader lives on as a candidate");
  }

  @Order(2)
  @Test
  void theLeaderCutOffFromZooKeeperStopsWritingAndTheStandbyFinishes() throws Exception {
    Job job = submitUnderWay("zookeeper-cut", 37);
    Leadership now = leadership();
    Role old = now.leader();
    Role standby = now.standby();
    long epoch = now.epoch();
    int suspendedBefore = old.countLog(SUSPENDED);
    int endedBefore = old.countLog(TERM_ENDED);
    TcpProxy proxy = zooKeeperProxies[now.index()];

    // The standby is held still: whatever the .part file does from here on is the old leader's.
    standby.stop();
    Instant fault = Instant.now();
    FileState atEnd;
    Duration unchangedFor;
    long batchesWhileHeld;
    Instant suspended;
    try {
      proxy.cut(TcpProxy.Mode.BLACKHOLE);
      suspended = awaitMore(old, SUSPENDED, suspendedBefore, Duration.ofSeconds(30));
      sleep(500); // writes issued before SUSPENDED may still be in flight
      atEnd = FileState.of(job.part());
      long batches = cluster.events().chunkBatches(job.id());
      Instant watched = Instant.now();
      sleep(2000);
      assertEquals(atEnd, FileState.of(job.part()), "the leader cut off from ZooKeeper writes nothing after "
          + "SUSPENDED, though Kafka still feeds it");
      unchangedFor = Duration.between(watched, Instant.now());
      batchesWhileHeld = cluster.events().chunkBatches(job.id()) - batches;
    } finally {
      standby.cont();
    }
    boolean endedWhileHeld = old.countLog(TERM_ENDED) > endedBefore;
    Instant takeover = awaitTakeover(standby, epoch);
    proxy.heal();
    Duration ttr = Duration.between(fault, cluster.events().awaitProgress(job.id(), fault, TIMEOUT));
    finishesIdentical(job, "leader writer cut off from ZooKeeper (Kafka fine)", String.format(Locale.ROOT,
        "the leader's ZooKeeper proxy cut mid-job (live connection dropped, new ones blackholed; session %s) "
        + "until the standby led; the standby SIGSTOPped from the cut until 0.5 s after SUSPENDED plus %.1f s",
        SESSION, unchangedFor.toMillis() / 1000.0), ttr, String.format(Locale.ROOT, "SUSPENDED %.1f s after the "
        + "cut, term of epoch %d %s by then; .part (%d bytes) unchanged (size, mtime, SHA-256) for %.1f s from 0.5 s "
        + "after SUSPENDED while workers produced %d chunk batches of the job; standby led %.1f s after the cut",
        secs(fault, suspended), epoch, endedWhileHeld ? "ended" : "blocked in a ZooKeeper call (not ended)", atEnd.size(), unchangedFor.toMillis() / 1000.0, batchesWhileHeld, secs(fault, takeover)));
    assertTrue(old.isAlive(), "the old leader lives on");
  }

  private static double secs(Instant from, Instant to) {
    return Duration.between(from, to).toMillis() / 1000.0;
  }

  private static void sleep(long ms) {
    FaultSuiteTest.sleep(ms);
  }
}
