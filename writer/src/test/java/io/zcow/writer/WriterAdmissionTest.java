package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import io.zcow.testkit.EmbeddedZooKeeper;
import io.zcow.testkit.EmbeddedZooKeeperExtension;
import io.zcow.testkit.QemuImg;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Admission: the writer's cache budget bounds its memory whatever the number of jobs. The writer
 * runs in a process of its own, with direct memory capped below what every job at once would take.
 */
@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class WriterAdmissionTest {
  private static final int JOBS = 12;
  private static final long RANGE = 1L << 20;

  @Test
  void twelveJobsOnABudgetOfFourFinishIdenticalTheRestQueuedFirst(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    QemuImg.assumeAvailable();
    Path root = Files.createDirectories(dir.resolve("root"));
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      Map<String, JobSpec> specs = new HashMap<>();
      Map<String, Path> disks = new HashMap<>();
      for (int i = 0; i < JOBS; i++) {
        String id = "adm-" + i;
        Path disk = Disks.mixed(dir.resolve(id + ".raw"), 2 * RANGE, 60 + i);
        disks.put(id, disk);
        specs.put(id, h.spec(id, disk, 65536, RANGE, id + ".qcow2"));
      }
      Path log = dir.resolve("writer.log");
      // 12 jobs of 32 MiB each (the old per-image cache) would need 384 MiB; the budget is 32 MiB
      // in slices of 8, so 4 run at once and the JVM's direct memory is capped at 96 MiB.
      Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-XX:MaxDirectMemorySize=96m", "-cp", System.getProperty("java.class.path"), WriterMain.class.getName(),
          kafka.bootstrapServers(), zk.connectString(), root.toString(), h.group, h.jobs, h.tasks, h.events, h.zkRoot,
          "32", "8").redirectErrorStream(true).redirectOutput(log.toFile()).start();
      try (AutoCloseable served = h.serveTasks(specs, disks)) {
        for (int i = 0; i < JOBS; i++) {
          h.publish(specs.get("adm-" + i));
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(150).toNanos();
        Set<String> done = Set.of();
        while (done.size() < JOBS && System.nanoTime() < deadline && child.isAlive()) {
          WriterHarness.sleep(500);
          done = h.events().stream().filter(e -> e.getKind() == EventKind.EVENT_KIND_STATE
              && e.getState() == JobState.JOB_STATE_DONE).map(JobEvent::getJobId).collect(Collectors.toSet());
        }
        String childLog = Files.readString(log);
        assertEquals(JOBS, done.size(), "jobs done: " + done + "\n" + tail(childLog));
        List<JobEvent> events = h.events();
        long queued = events.stream().filter(e -> e.getKind() == EventKind.EVENT_KIND_STATE
            && e.getState() == JobState.JOB_STATE_QUEUED).count();
        assertTrue(queued >= JOBS - 4, "at most 4 jobs ran at once, the others waited QUEUED: " + queued);
        assertFalse(childLog.contains("OutOfMemoryError"), tail(childLog));
        assertFalse(childLog.contains("for a QUEUED job: skipped"), "no chunk of a QUEUED job was skipped");
        assertFalse(events.stream().anyMatch(e -> e.getKind() == EventKind.EVENT_KIND_RANGE_REQUEUED),
            WriterHarness.summary(events));
      } finally {
        child.destroy();
        child.waitFor();
      }
      for (int i = 0; i < JOBS; i++) {
        Path image = root.resolve("adm-" + i + ".qcow2");
        QemuImg.assertClean(image);
        QemuImg.assertIdentical(disks.get("adm-" + i), image);
      }
    }
  }

  private static String tail(String log) {
    return log.length() > 4000 ? log.substring(log.length() - 4000) : log;
  }
}
