package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Wire;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import io.zcow.testkit.EmbeddedZooKeeper;
import io.zcow.testkit.EmbeddedZooKeeperExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A range's attempts are the writer's: workers' failed attempts are issued again, counted, and the
 * count survives a change of leader (the checkpoint's issued ranges are restored in the new term).
 */
@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class WriterAttemptsTest {
  private static final Duration WAIT = Duration.ofSeconds(60);

  @Test
  void failedAttemptsCountAcrossATermChangeUntilTheJobFails(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 1L << 20, 3);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      // Timers far away: only the failed attempts workers report re-issue the range.
      WriterConfig c = h.config().toBuilder().checkpointInterval(Duration.ofMillis(300)).maxRequeues(2).build();
      Writer first = h.startWriter(c);
      assertTrue(first.awaitLeadership(Duration.ofSeconds(30)));
      Writer second = h.startWriter(c);
      JobSpec spec = h.spec("attempts", disk, 65536, 1L << 20, "attempts.qcow2");
      h.publish(spec);
      h.awaitState("attempts", JobState.JOB_STATE_RUNNING, WAIT);

      failUntilRequeued(h, spec, 0);
      WriterHarness.sleep(1000); // a checkpoint records attempt 1
      first.close();
      assertTrue(second.awaitLeadership(Duration.ofSeconds(30)));
      assertTrue(second.epoch() > first.epoch());

      // The new leader knows the range is on attempt 1 (one counted): a report of attempt 1 is
      // answered, and with attempt 2 failed the range is out of its 2 counted re-issues.
      failUntilRequeued(h, spec, 1);
      sendFailed(h, spec, 2);
      JobEvent failed = h.awaitState("attempts", JobState.JOB_STATE_FAILED, WAIT);
      assertTrue(failed.getReason().startsWith("range 0 re-queued 2 times: no worker completed it (last released: "
          + "worker@t could not finish it: read error at 0x0 (attempt 2)"), failed.getReason());
    }
  }

  /** Reports attempt {@code attempt} failed until the writer issues the range as the next one (a new term's reader starts at the end). */
  private static void failUntilRequeued(WriterHarness h, JobSpec spec, int attempt) {
    long deadline = System.nanoTime() + WAIT.toNanos();
    String requeued = "attempt " + (attempt + 1) + ": attempt " + attempt + " failed on a worker";
    while (System.nanoTime() < deadline) {
      sendFailed(h, spec, attempt);
      WriterHarness.sleep(500);
      for (JobEvent e : h.events()) {
        if (e.getKind() == EventKind.EVENT_KIND_RANGE_REQUEUED && e.getJobId().equals(spec.getJobId())
            && e.getReason().startsWith(requeued)) {
          assertEquals(0, e.getRangeIndex());
          return;
        }
      }
    }
    fail("no re-issue of range 0 as attempt " + (attempt + 1) + " in: " + WriterHarness.summary(h.events()));
  }

  private static void sendFailed(WriterHarness h, JobSpec spec, int attempt) {
    JobEvent e = JobEvent.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(spec.getJobId())
        .setKind(EventKind.EVENT_KIND_ATTEMPT_FAILED).setRangeIndex(0).setAttempt(attempt).setOrigin("worker@t")
        .setReason("worker@t could not finish it: read error at 0x0 (attempt " + attempt + ")")
        .setTimeMs(System.currentTimeMillis()).build();
    h.send(h.events, spec.getJobId(), e.toByteArray());
  }
}
