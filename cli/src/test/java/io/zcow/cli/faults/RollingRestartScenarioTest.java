package io.zcow.cli.faults;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.zcow.proto.Topics;
import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A rolling restart of a three-broker cluster during a job, as an operator upgrades brokers: each
 * node in turn is stopped cleanly (SIGTERM: controlled shutdown, its partition leaders move to the
 * others), started again on its port and data, and the next one waits until every partition is
 * fully replicated again. The control topics have 3 replicas and {@code min.insync.replicas} 2, so
 * one node down stops nothing. The job must end identical and clean, and the report row gives how
 * many partition leaders moved and the longest stall of the job.
 *
 * <p>Sizes from system properties (as {@link FaultSuiteTest}): {@code zcow.faults.rollDiskMiB} (32),
 * {@code zcow.faults.rollReadRate} (MB/s per worker, 0.25: slow enough that the job still runs
 * when the third node stops) and {@code zcow.faults.rangeSize} (4m); {@code -Pstress} sets larger.
 */
class RollingRestartScenarioTest {
  private static final long DISK = Long.getLong("zcow.faults.rollDiskMiB", 32) << 20;
  private static final String READ_RATE = System.getProperty("zcow.faults.rollReadRate", "0.25");
  private static final String RANGE_SIZE = System.getProperty("zcow.faults.rangeSize", "4m");
  private static final Duration TIMEOUT = Duration.ofSeconds(Long.getLong("zcow.faults.jobTimeoutS", 240));
  private static final Duration ISR_TIMEOUT = Duration.ofSeconds(120);
  private static final int BROKERS = 3;

  @TempDir
  static Path dir;

  @AfterAll
  static void report() {
    FaultReport.shared().print();
  }

  @Test
  void aRollingRestartOfThreeBrokersMidJobEndsIdentical() throws Exception {
    QemuImg.assumeAvailable();
    try (LoopbackCluster cluster = LoopbackCluster.start(dir, BROKERS)) {
      cluster.startWriter("writer-a", "--zookeeper-session-timeout", "4s", "--range-timeout", "20s");
      for (int i = 1; i <= 3; i++) {
        cluster.startWorker("worker-" + i, "--max-read-rate", READ_RATE);
      }
      String id = "rolling-restart-29";
      Path source = Disks.mixed(dir.resolve(id + ".raw"), DISK, 29);
      List<String> args = cluster.backupArgs(source, id + ".qcow2", id);
      args.set(args.indexOf("--range-size") + 1, RANGE_SIZE);
      Role backup = cluster.startBackup("backup-" + id, args);
      Path image = cluster.targetRoot().resolve(id + ".qcow2");
      cluster.events().awaitRangesDone(id, 1, TIMEOUT);

      List<String> steps = new ArrayList<>();
      int moved = 0;
      Duration worstStall = Duration.ZERO;
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.kafka(),
          AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000))) {
        awaitFullyReplicated(admin);
        for (String t : List.of(Topics.JOBS, Topics.TASKS, Topics.EVENTS)) {
          for (TopicPartitionInfo p : describe(admin).get(t).partitions()) {
            assertEquals(BROKERS, p.replicas().size(), "control topic " + t + " has a replica on every broker");
          }
        }
        for (int i = 0; i < BROKERS; i++) {
          assertTrue(backup.isAlive(), "the job still runs when kafka-" + (i + 1) + " is stopped: " + backup.describe());
          Map<TopicPartition, Integer> before = leaders(admin);
          int node = i + 1;
          long led = before.values().stream().filter(l -> l == node).count();
          Role broker = cluster.kafkaServers().get(i);
          Instant stop = Instant.now();
          int code = broker.terminate(Duration.ofSeconds(60));
          Duration stopped = Duration.between(stop, Instant.now());
          cluster.restart(broker);
          Duration serving = Duration.between(stop, Instant.now());
          Duration isr = awaitFullyReplicated(admin);
          Map<TopicPartition, Integer> after = leaders(admin);
          int changed = 0;
          for (Map.Entry<TopicPartition, Integer> e : before.entrySet()) {
            if (!e.getValue().equals(after.get(e.getKey()))) {
              changed++;
            }
          }
          moved += changed;
          Duration stall = Duration.between(stop, cluster.events().awaitProgress(id, stop, TIMEOUT));
          worstStall = stall.compareTo(worstStall) > 0 ? stall : worstStall;
          steps.add(String.format(Locale.ROOT, "kafka-%d (led %d partitions) stopped in %.1f s (exit %d), serving "
              + "again %.1f s after SIGTERM, fully replicated %.1f s later, %d leaders moved", node, led,
              stopped.toMillis() / 1000.0, code, serving.toMillis() / 1000.0, isr.toMillis() / 1000.0, changed));
        }
      }
      int code = backup.await(TIMEOUT);
      assertEquals(0, code, backup.describe() + cluster.logsOfRoles());
      long lost = FaultReport.shared().addImage("rolling restart of 3 brokers mid-job",
          "SIGTERM, restart on its port and data, wait for full replication; one broker after the other: "
              + String.join("; ", steps),
          source, image, worstStall, "exit " + code + "; " + moved + " partition leaders moved in all; the longest "
              + "wait for the job's next range after a SIGTERM is the time to recover");
      QemuImg.assertClean(image);
      QemuImg.assertIdentical(source, image);
      assertEquals(0, lost);
      assertFalse(Files.exists(image.resolveSibling(image.getFileName() + ".part")), "no .part left");
      assertTrue(moved > 0, "partition leaders moved during the roll");
    }
  }

  private static Map<String, TopicDescription> describe(Admin admin) throws Exception {
    List<String> names = new ArrayList<>(admin.listTopics(new ListTopicsOptions().listInternal(true)).names()
        .get(30, TimeUnit.SECONDS));
    return admin.describeTopics(names).allTopicNames().get(30, TimeUnit.SECONDS);
  }

  /** Leader node of every partition of every topic (internal ones included); -1 without one. */
  private static Map<TopicPartition, Integer> leaders(Admin admin) throws Exception {
    Map<TopicPartition, Integer> out = new HashMap<>();
    for (TopicDescription t : describe(admin).values()) {
      for (TopicPartitionInfo p : t.partitions()) {
        out.put(new TopicPartition(t.name(), p.partition()), p.leader() == null ? -1 : p.leader().id());
      }
    }
    return out;
  }

  /** Waits until every partition of every topic has its whole replica set in sync; returns how long it took. */
  private static Duration awaitFullyReplicated(Admin admin) {
    Instant start = Instant.now();
    long deadline = System.nanoTime() + ISR_TIMEOUT.toNanos();
    String last = "";
    while (System.nanoTime() < deadline) {
      try {
        List<String> behind = new ArrayList<>();
        for (TopicDescription t : describe(admin).values()) {
          for (TopicPartitionInfo p : t.partitions()) {
            if (p.isr().size() < p.replicas().size() || p.leader() == null) {
              behind.add(t.name() + "-" + p.partition());
            }
          }
        }
        if (behind.isEmpty()) {
          return Duration.between(start, Instant.now());
        }
        last = "under-replicated: " + behind;
      } catch (Exception e) {
        last = e.toString();
      }
      try {
        Thread.sleep(250);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        fail("interrupted");
      }
    }
    fail("not fully replicated within " + ISR_TIMEOUT + ": " + last);
    return null;
  }
}
