package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.qcow2.ImageWriter;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import io.zcow.testkit.EmbeddedZooKeeper;
import io.zcow.testkit.EmbeddedZooKeeperExtension;
import io.zcow.testkit.QemuImg;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A leader in another process that is frozen (SIGSTOP) loses its ZooKeeper session, but keeps its
 * lock on the target: the new leader is elected, yet waits and writes nothing until the old
 * process is gone, then resumes from the checkpoint.
 */
@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class CrossProcessFencingTest {

  @Test
  void aNewLeaderWaitsForTheLockOfAFrozenLeaderInAnotherProcess(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    QemuImg.assumeAvailable();
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 16L << 20, 29);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      JobSpec spec = h.spec("fence", disk, 65536, 4L << 20, "fence.qcow2");
      h.publish(spec);
      Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-cp", System.getProperty("java.class.path"), WriterMain.class.getName(), kafka.bootstrapServers(),
          zk.connectString(), root.toString(), h.group, h.jobs, h.tasks, h.events, h.zkRoot)
          .redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile()).start();
      try {
        h.awaitEvent(e -> e.getKind() == EventKind.EVENT_KIND_STATE && e.getState() == JobState.JOB_STATE_RUNNING,
            Duration.ofSeconds(60), "the child opens the job");
        h.sendRange(spec, disk, 0);
        h.sendRange(spec, disk, 1);
        h.awaitEvent(e -> e.getKind() == EventKind.EVENT_KIND_PROGRESS && e.getProgress().getRangesDone() >= 2,
            Duration.ofSeconds(60), "2 ranges done by the child");
        WriterHarness.sleep(1500); // a checkpoint covers them
        Writer standby = h.startWriter(h.config());
        signal(child, "STOP");
        assertTrue(standby.awaitLeadership(Duration.ofSeconds(60)), "elected once the frozen leader's session expired");
        h.sendRange(spec, disk, 2);
        long sizeBefore = Files.size(ImageWriter.partPath(root.resolve("fence.qcow2")));
        WriterHarness.sleep(3000);
        List<JobEvent> events = h.events();
        assertEquals(1, events.stream().filter(e -> e.getKind() == EventKind.EVENT_KIND_STATE).count(),
            "the new leader must not open the image while the frozen one holds its lock: " + WriterHarness.summary(events));
        assertEquals(sizeBefore, Files.size(ImageWriter.partPath(root.resolve("fence.qcow2"))));
        child.destroyForcibly();
        signal(child, "CONT");
        assertTrue(child.waitFor(30, TimeUnit.SECONDS));
        h.sendRange(spec, disk, 3);
        JobEvent done = h.awaitState("fence", JobState.JOB_STATE_DONE, Duration.ofSeconds(90));
        assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
        QemuImg.assertClean(root.resolve("fence.qcow2"));
        QemuImg.assertIdentical(disk, root.resolve("fence.qcow2"));
      } finally {
        child.destroyForcibly();
        signal(child, "CONT");
      }
    }
  }

  private static void signal(Process p, String sig) throws Exception {
    new ProcessBuilder("kill", "-" + sig, Long.toString(p.pid()))
        .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor();
  }
}
