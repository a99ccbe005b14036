package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobPlan;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeTask;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import io.zcow.testkit.EmbeddedZooKeeper;
import io.zcow.testkit.EmbeddedZooKeeperExtension;
import io.zcow.testkit.QemuImg;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The writer paces a job: it issues the tasks, and only a started range's clock can run out. */
@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class WriterPacingTest {
  private static final int CS = 65536;
  private static final long RANGE = 1L << 20;

  @BeforeAll
  static void qemu() {
    QemuImg.assumeAvailable();
  }

  @Test
  void aLongQueueBehindOneSlowWorkerIsNeverIssuedAgain(EmbeddedKafka kafka, EmbeddedZooKeeper zk, @TempDir Path dir)
      throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 8 * RANGE, 21);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      WriterConfig c = h.config().toBuilder().rangeTimeout(Duration.ofMillis(1500))
          .startTimeout(Duration.ofMillis(1500)).build();
      Writer w = h.startWriter(c);
      JobSpec spec = h.spec("queue", disk, CS, RANGE, "queue.qcow2").toBuilder()
          .setPlan(JobPlan.newBuilder().setWindow(8)).build();
      h.publish(spec);
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      // The writer issues all 8 tasks at once; one worker takes them one after the other, a
      // second apiece: the last waits 7 s in the queue, far past both timeouts.
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (h.tasks().size() < 8 && System.nanoTime() < deadline) {
        WriterHarness.sleep(100);
      }
      assertEquals(List.of(0L, 1L, 2L, 3L, 4L, 5L, 6L, 7L),
          h.tasks().stream().map(RangeTask::getRangeIndex).sorted().toList(), "the writer issued the window");
      for (long r = 0; r < 8; r++) {
        h.sendStarted(spec, r, "slow-" + r);
        WriterHarness.sleep(900);
        h.sendRange(spec, disk, r);
      }
      JobEvent done = h.awaitState("queue", JobState.JOB_STATE_DONE, Duration.ofSeconds(60));
      assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      assertEquals(List.of(), requeues(h), "no range that waited in the queue was issued again");
      assertEquals(8, h.tasks().size());
      QemuImg.assertIdentical(disk, root.resolve("queue.qcow2"));
    }
  }

  @Test
  void aJumpOfTheWallClockChangesNothing(EmbeddedKafka kafka, EmbeddedZooKeeper zk, @TempDir Path dir)
      throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 6 * RANGE, 22);
    AtomicLong jump = new AtomicLong();
    Clock wall = new Clock() {
      @Override
      public ZoneId getZone() {
        return ZoneOffset.UTC;
      }

      @Override
      public Clock withZone(ZoneId zone) {
        return this;
      }

      @Override
      public Instant instant() {
        return Instant.ofEpochMilli(System.currentTimeMillis() + jump.get());
      }
    };
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      WriterConfig c = h.config().toBuilder().rangeTimeout(Duration.ofSeconds(20)).build();
      Writer w = new Writer(c, wall, System::nanoTime, WriterClients::of).start();
      try {
        JobSpec spec = h.spec("ntp", disk, CS, RANGE, "ntp.qcow2");
        h.publish(spec);
        assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
        for (long r = 0; r < 3; r++) {
          h.sendStarted(spec, r, "a-" + r);
          h.sendRange(spec, disk, r);
        }
        h.sendStarted(spec, 3, "a-3");
        jump.set(Duration.ofHours(3).toMillis()); // forward: every range's wall-clock timer would run out
        WriterHarness.sleep(1500);
        jump.set(-Duration.ofHours(3).toMillis()); // backward: a wall-clock checkpoint timer would stop
        long before = stateFiles(root);
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (stateFiles(root) == before && System.nanoTime() < deadline) {
          WriterHarness.sleep(100);
        }
        assertTrue(stateFiles(root) > before, "checkpoints go on after the clock stepped back");
        for (long r = 3; r < 6; r++) {
          h.sendRange(spec, disk, r);
        }
        JobEvent done = h.awaitState("ntp", JobState.JOB_STATE_DONE, Duration.ofSeconds(60));
        assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
        assertEquals(List.of(), requeues(h));
        QemuImg.assertIdentical(disk, root.resolve("ntp.qcow2"));
      } finally {
        w.close();
      }
    }
  }

  /** The newest state-file sequence beside the images (each checkpoint writes a new one). */
  private static long stateFiles(Path root) throws Exception {
    try (var s = Files.list(root)) {
      return s.map(p -> p.getFileName().toString()).filter(n -> n.contains(".state-"))
          .mapToLong(n -> Long.parseLong(n.substring(n.lastIndexOf('-') + 1))).max().orElse(0);
    }
  }

  private static List<String> requeues(WriterHarness h) {
    return h.events().stream().filter(e -> e.getKind() == EventKind.EVENT_KIND_RANGE_REQUEUED)
        .map(e -> "range " + e.getRangeIndex() + ": " + e.getReason()).toList();
  }
}
