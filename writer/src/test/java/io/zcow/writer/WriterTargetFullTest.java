package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.qcow2.ImageWriter;
import io.zcow.qcow2.TargetSpace;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import io.zcow.testkit.EmbeddedZooKeeper;
import io.zcow.testkit.EmbeddedZooKeeperExtension;
import io.zcow.testkit.QemuImg;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The target file system fills up under one job (through DirectFile's ENOSPC seam, so no root is
 * needed): that job FAILS with a reason that says so, nothing appears at its target, the writer
 * keeps its leadership and finishes another job, and once space is freed the resubmitted job
 * resumes from its checkpoint to an identical, clean image.
 */
@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class WriterTargetFullTest {
  static final Duration JOB_TIMEOUT = Duration.ofSeconds(90);
  static final int CS = 65536;
  static final long RANGE = 4L << 20;

  @BeforeAll
  static void qemu() {
    QemuImg.assumeAvailable();
  }

  @Test
  void aFullTargetFailsItsJobOnlyAndTheResubmittedJobResumesOnceSpaceIsFreed(EmbeddedKafka kafka,
      EmbeddedZooKeeper zk, @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path fullDir = Files.createDirectories(root.resolve("full"));
    Path disk = Disks.random(dir.resolve("disk.raw"), 16L << 20, 23);
    Path other = Disks.mixed(dir.resolve("other.raw"), 8L << 20, 29);
    Path target = fullDir.resolve("img.qcow2");
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      Writer w = h.startWriter(h.config());
      JobSpec spec = h.spec("full", disk, CS, RANGE, "full/img.qcow2");
      h.publish(spec);
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      long epoch = w.epoch();
      h.sendRange(spec, disk, 0);
      h.sendRange(spec, disk, 1);
      h.awaitEvent(e -> e.getKind() == EventKind.EVENT_KIND_PROGRESS && e.getProgress().getRangesDone() >= 2,
          JOB_TIMEOUT, "2 ranges done");
      WriterHarness.sleep(1200); // a checkpoint or two
      TargetSpace.limit(fullDir, 1L << 20); // random data: ranges 2 and 3 need 8 MiB
      try {
        h.sendRange(spec, disk, 2);
        h.sendRange(spec, disk, 3);
        JobEvent failed = h.awaitState("full", JobState.JOB_STATE_FAILED, JOB_TIMEOUT);
        assertEquals(JobState.JOB_STATE_FAILED, failed.getState(), failed.getReason());
        assertTrue(failed.getReason().startsWith("target file system is full: "), failed.getReason());
        assertTrue(failed.getReason().contains(fullDir.toString()), failed.getReason());
        assertFalse(Files.exists(target), "nothing at the target path");
        assertTrue(Files.exists(ImageWriter.partPath(target)), "the .part file is kept for a resume");

        // The writer is still the leader of the same term and writes other jobs (elsewhere).
        JobSpec second = h.spec("other", other, CS, RANGE, "other.qcow2");
        h.publish(second);
        for (long r = 0; r < h.ranges(second); r++) {
          h.sendRange(second, other, r);
        }
        JobEvent otherDone = awaitDone(h, "other");
        assertEquals(JobState.JOB_STATE_DONE, otherDone.getState(), otherDone.getReason());
        QemuImg.assertIdentical(other, root.resolve("other.qcow2"));
        assertEquals(epoch, w.epoch(), "a full target must not end the writer's term");
      } finally {
        TargetSpace.free(fullDir);
      }

      // Space is back: the job is resubmitted (a new created_at, as a re-run coordinator does) and
      // its ranges sent again; the writer resumes the .part from the last committed checkpoint.
      JobSpec again = spec.toBuilder().setCreatedAtMs(spec.getCreatedAtMs() + 1).build();
      h.publish(again);
      WriterHarness.sleep(500);
      for (long r = 0; r < h.ranges(again); r++) {
        h.sendRange(again, disk, r);
      }
      JobEvent done = awaitDone(h, "full");
      assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      assertFalse(Files.exists(ImageWriter.partPath(target)));
      QemuImg.assertClean(target);
      QemuImg.assertIdentical(disk, target);
    }
  }

  private static JobEvent awaitDone(WriterHarness h, String job) {
    return h.awaitEvent(e -> e.getJobId().equals(job) && e.getKind() == EventKind.EVENT_KIND_STATE
        && e.getState() == JobState.JOB_STATE_DONE, JOB_TIMEOUT, job + " DONE");
  }
}
