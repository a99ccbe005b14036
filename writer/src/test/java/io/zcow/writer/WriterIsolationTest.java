package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EntryKind;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobPlan;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeDone;
import io.zcow.proto.RangeRun;
import io.zcow.proto.RangeStarted;
import io.zcow.proto.Wire;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import io.zcow.testkit.EmbeddedZooKeeper;
import io.zcow.testkit.EmbeddedZooKeeperExtension;
import io.zcow.testkit.QemuImg;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.apache.curator.framework.CuratorFramework;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Per-job isolation: nothing about one job — its spec, records, checkpoint or state file — ends
 * the writer's term; it fails that job, or refuses that record, and every other job finishes.
 */
@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class WriterIsolationTest {
  private static final int CS = 65536;
  private static final long RANGE = 1L << 20;
  private static final Duration JOB_TIMEOUT = Duration.ofSeconds(90);

  @BeforeAll
  static void qemu() {
    QemuImg.assumeAvailable();
  }

  @Test
  void rangeIndexesBeyondTheSignedRangeAreRefusedAndTheTermGoesOn(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 4 * RANGE, 41);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      Writer w = h.startWriter(h.config());
      JobSpec spec = h.spec("idx", disk, CS, RANGE, "idx.qcow2");
      h.publish(spec);
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      h.awaitState("idx", JobState.JOB_STATE_RUNNING, JOB_TIMEOUT);
      long epoch = w.epoch();
      for (long bad : new long[] {-1L, Long.MIN_VALUE}) { // 2^64 - 1 and 2^63 as uint64 on the wire
        String key = "idx/" + Long.toUnsignedString(bad);
        h.sendChunk(key, ChunkRecord.newBuilder().setBatch(ChunkBatch.newBuilder().setFormatVersion(Wire.FORMAT_VERSION)
            .setJobId("idx").setRangeIndex(bad).setAttemptId("x").addEntries(ChunkEntry.newBuilder()
                .setKind(EntryKind.ENTRY_KIND_ZERO).setCluster(0).setCount(1))).build().toByteArray());
        h.sendChunk(key, ChunkRecord.newBuilder().setStarted(RangeStarted.newBuilder()
            .setFormatVersion(Wire.FORMAT_VERSION).setJobId("idx").setRangeIndex(bad)).build().toByteArray());
        h.sendChunk(key, ChunkRecord.newBuilder().setDone(RangeDone.newBuilder().setFormatVersion(Wire.FORMAT_VERSION)
            .setJobId("idx").setRangeIndex(bad)).build().toByteArray());
      }
      try (AutoCloseable served = h.serveTasks(Map.of("idx", spec), Map.of("idx", disk))) {
        JobEvent done = h.awaitState("idx", JobState.JOB_STATE_DONE, JOB_TIMEOUT);
        assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      }
      assertEquals(epoch, w.epoch(), "no record ended the term");
      assertEquals(4, h.events().stream().filter(e -> e.getKind() == EventKind.EVENT_KIND_RECORD_REJECTED).count(),
          WriterHarness.summary(h.events()));
      QemuImg.assertClean(root.resolve("idx.qcow2"));
      QemuImg.assertIdentical(disk, root.resolve("idx.qcow2"));
    }
  }

  @Test
  void specsNoWriterCanRunFailAloneAndTheOtherJobFinishes(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 2 * RANGE, 42);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      Writer w = h.startWriter(h.config());
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      long epoch = w.epoch();
      JobSpec good = h.spec("good", disk, CS, RANGE, "good.qcow2");
      h.publish(h.spec("..", disk, CS, RANGE, "dots.qcow2"));
      h.publish(h.spec(".", disk, CS, RANGE, "dot.qcow2"));
      h.publish(h.spec("odd", disk, CS, RANGE, "odd.qcow2").toBuilder().setVirtualSize(2 * RANGE + 1).build());
      h.publish(good);
      try (AutoCloseable served = h.serveTasks(Map.of("good", good), Map.of("good", disk))) {
        JobEvent odd = h.awaitState("odd", JobState.JOB_STATE_FAILED, JOB_TIMEOUT);
        assertTrue(odd.getReason().contains("virtual_size"), odd.getReason());
        JobEvent done = h.awaitState("good", JobState.JOB_STATE_DONE, JOB_TIMEOUT);
        assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      }
      assertEquals(epoch, w.epoch(), "no spec ended the term");
      assertTrue(Files.list(root).noneMatch(p -> p.getFileName().toString().startsWith("dot")), "nothing of '.' or '..'");
      QemuImg.assertIdentical(disk, root.resolve("good.qcow2"));
    }
  }

  @Test
  void aDamagedCheckpointInZooKeeperFailsThatJobAlone(EmbeddedKafka kafka, EmbeddedZooKeeper zk, @TempDir Path dir)
      throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path a = Disks.mixed(dir.resolve("a.raw"), 2 * RANGE, 43);
    Path b = Disks.mixed(dir.resolve("b.raw"), 2 * RANGE, 44);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      WriterConfig c = h.config().toBuilder().startTimeout(Duration.ofSeconds(2)).build();
      JobSpec sa = h.spec("a", a, CS, RANGE, "a.qcow2");
      JobSpec sb = h.spec("b", b, CS, RANGE, "b.qcow2");
      Writer first = h.startWriter(c);
      h.publish(sa);
      h.publish(sb);
      assertTrue(first.awaitLeadership(Duration.ofSeconds(30)));
      try (AutoCloseable served = h.serveTasks(Map.of("a", sa, "b", sb), Map.of("a", a, "b", b),
          t -> t.getRangeIndex() == 0)) {
        awaitCheckpointed(h, 2);
      }
      first.close();
      try (CuratorFramework client = zk.newClient()) {
        client.setData().forPath(h.zkRoot + "/" + h.group + "/jobs/a/checkpoint", new byte[] {1, 2, 3, 4, 5});
      }
      Writer second = h.startWriter(c);
      assertTrue(second.awaitLeadership(Duration.ofSeconds(30)));
      try (AutoCloseable served = h.serveTasks(Map.of("a", sa, "b", sb), Map.of("a", a, "b", b))) {
        JobEvent failed = h.awaitState("a", JobState.JOB_STATE_FAILED, JOB_TIMEOUT);
        assertTrue(failed.getReason().contains("checkpoint in ZooKeeper is damaged"), failed.getReason());
        JobEvent done = h.awaitState("b", JobState.JOB_STATE_DONE, JOB_TIMEOUT);
        assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      }
      QemuImg.assertIdentical(b, root.resolve("b.qcow2"));
    }
  }

  @Test
  void aDamagedStateFileResumesFromTheCheckpointBefore(EmbeddedKafka kafka, EmbeddedZooKeeper zk, @TempDir Path dir)
      throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 4 * RANGE, 45);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      WriterConfig c = h.config().toBuilder().startTimeout(Duration.ofSeconds(2)).build();
      JobSpec spec = h.spec("state", disk, CS, RANGE, "state.qcow2");
      Writer first = h.startWriter(c);
      h.publish(spec);
      assertTrue(first.awaitLeadership(Duration.ofSeconds(30)));
      try (AutoCloseable served = h.serveTasks(Map.of("state", spec), Map.of("state", disk),
          t -> t.getRangeIndex() < 2)) {
        awaitCheckpointed(h, 2);
      }
      first.close();
      Path newest = Files.list(root).filter(p -> p.getFileName().toString().startsWith("state.qcow2.part.state-"))
          .max(java.util.Comparator.comparingLong(p -> Long.parseLong(p.getFileName().toString().replaceAll(".*-", ""))))
          .orElseThrow();
      assertTrue(Files.list(root).filter(p -> p.getFileName().toString().contains(".state-")).count() >= 2,
          "the state file of the checkpoint before is kept");
      try (RandomAccessFile f = new RandomAccessFile(newest.toFile(), "rw")) {
        f.seek(f.length() / 2);
        f.write(new byte[] {0x55, 0x55, 0x55, 0x55});
      }
      Writer second = h.startWriter(c);
      assertTrue(second.awaitLeadership(Duration.ofSeconds(30)));
      try (AutoCloseable served = h.serveTasks(Map.of("state", spec), Map.of("state", disk))) {
        JobEvent done = h.awaitState("state", JobState.JOB_STATE_DONE, JOB_TIMEOUT);
        assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      }
      QemuImg.assertClean(root.resolve("state.qcow2"));
      QemuImg.assertIdentical(disk, root.resolve("state.qcow2"));
    }
  }

  @Test
  void aFailedSparseJobSubmittedAgainResumesAndACancelledOneStartsAfresh(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    // Ranges 0..3: data in 0 and 3, holes in 1 and 2 (declared in the plan).
    Path sparse = Disks.sparse(dir.resolve("sparse.raw"), 4 * RANGE, 46, 0, 3 * RANGE + 8192);
    Path other = Disks.mixed(dir.resolve("other.raw"), 2 * RANGE, 47);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      WriterConfig c = h.config().toBuilder().rangeTimeout(Duration.ofMillis(500)).startTimeout(Duration.ofMillis(500))
          .maxRequeues(1).build();
      Writer w = h.startWriter(c);
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      JobSpec spec = h.spec("sparse", sparse, CS, RANGE, "sparse.qcow2").toBuilder()
          .setPlan(JobPlan.newBuilder().addZeroRanges(RangeRun.newBuilder().setFirst(1).setCount(2))).build();
      h.publish(spec);
      JobEvent failed = h.awaitState("sparse", JobState.JOB_STATE_FAILED, JOB_TIMEOUT); // nobody serves its tasks
      assertTrue(failed.getReason().contains("re-queued"), failed.getReason());

      JobSpec cancelled = h.spec("again", other, CS, RANGE, "again.qcow2");
      h.publish(cancelled);
      h.awaitState("again", JobState.JOB_STATE_RUNNING, JOB_TIMEOUT);
      h.publish(cancelled.toBuilder().setState(JobState.JOB_STATE_CANCELLED).build());
      h.awaitEvent(e -> e.getJobId().equals("again") && e.getState() == JobState.JOB_STATE_CANCELLED, JOB_TIMEOUT,
          "cancelled");

      JobSpec resumed = spec.toBuilder().setCreatedAtMs(spec.getCreatedAtMs() + 1).build();
      JobSpec rerun = cancelled.toBuilder().setCreatedAtMs(cancelled.getCreatedAtMs() + 1).build();
      try (AutoCloseable served = h.serveTasks(Map.of("sparse", resumed, "again", rerun),
          Map.of("sparse", sparse, "again", other))) {
        h.publish(resumed);
        h.publish(rerun);
        JobEvent done = h.awaitEvent(e -> e.getJobId().equals("sparse") && e.getState() == JobState.JOB_STATE_DONE,
            JOB_TIMEOUT, "the failed job resumed to its end");
        assertEquals(JobState.JOB_STATE_DONE, done.getState());
        h.awaitEvent(e -> e.getJobId().equals("again") && e.getState() == JobState.JOB_STATE_DONE, JOB_TIMEOUT,
            "the cancelled job id ran again to its end");
      }
      QemuImg.assertClean(root.resolve("sparse.qcow2"));
      QemuImg.assertIdentical(sparse, root.resolve("sparse.qcow2"));
      QemuImg.assertIdentical(other, root.resolve("again.qcow2"));
    }
  }

  /** Waits until a checkpoint of {@code ranges} complete ranges per job was committed, and one more. */
  private static void awaitCheckpointed(WriterHarness h, int jobs) {
    h.awaitEvent(e -> e.getKind() == EventKind.EVENT_KIND_PROGRESS && e.getProgress().getRangesDone() >= 1,
        JOB_TIMEOUT, "progress");
    WriterHarness.sleep(2500); // checkpoints every 500 ms: several cover what was done
  }
}
