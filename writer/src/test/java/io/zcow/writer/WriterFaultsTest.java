package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EntryChecksum;
import io.zcow.proto.EntryKind;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeTask;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
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
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class WriterFaultsTest {
  static final Duration JOB_TIMEOUT = Duration.ofSeconds(90);
  static final int CS = 65536;
  static final long RANGE = 4L << 20;

  @BeforeAll
  static void qemu() {
    QemuImg.assumeAvailable();
  }

  @Test
  void badRecordsAreReportedAndNeverWrittenAndTheJobStillCompletes(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 16L << 20, 11);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      WriterConfig config = h.config();
      Writer w = h.startWriter(config.toBuilder().verifyPayloads(true).build());
      JobSpec spec = h.spec("bad", disk, CS, RANGE, "bad.qcow2");
      h.publish(spec);
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      long rc = RANGE / CS;
      List<ChunkRecord> range1 = h.chunks(spec, disk, 1, "x");
      ChunkBatch good = range1.get(0).getBatch();
      int dataEntry = indexOfData(good);
      // 1: garbage bytes
      h.sendChunk(Wire.rangeKey("bad", 1), new byte[] {1, 2, 3, 4, 5, 6, 7});
      // 2: entry checksum mismatch
      ChunkEntry e = good.getEntries(dataEntry);
      h.sendChunk(Wire.rangeKey("bad", 1), batch(good.toBuilder().setEntries(dataEntry, e.toBuilder().setCrc32C(e.getCrc32C() ^ 1))));
      // 3: unknown job
      h.sendChunk(Wire.rangeKey("nope", 1), batch(good.toBuilder().setJobId("nope")));
      // 4: a cluster of range 2 in a batch of range 1
      h.sendChunk(Wire.rangeKey("bad", 1), batch(good.toBuilder().clearEntries().addEntries(
          EntryChecksum.seal(e.toBuilder().setCluster(2 * rc)))));
      // 5: a cluster past the image
      h.sendChunk(Wire.rangeKey("bad", 3), batch(good.toBuilder().setRangeIndex(3).clearEntries().addEntries(
          EntryChecksum.seal(e.toBuilder().setCluster(4 * rc + 5)))));
      // 6: a payload that does not decompress (correct checksum): --verify-payloads refuses it
      h.sendChunk(Wire.rangeKey("bad", 1), batch(good.toBuilder().clearEntries().addEntries(EntryChecksum.seal(
          ChunkEntry.newBuilder().setKind(EntryKind.ENTRY_KIND_COMPRESSED).setCluster(e.getCluster())
              .setPayload(ByteString.copyFrom(new byte[100]))))));
      // 7: a format version from the future
      h.sendChunk(Wire.rangeKey("bad", 1), batch(good.toBuilder().setFormatVersion(99)));
      List<JobEvent> rejected = awaitRejections(h, 7);
      for (JobEvent r : rejected) {
        assertEquals(Topics.chunks(h.group), r.getRecord().getTopic(), r.toString());
      }
      // Good data, with duplicates (range 0 twice, range 1 in two attempts).
      h.sendRange(spec, disk, 0);
      h.sendRange(spec, disk, 0);
      h.sendChunks(spec, 1, range1);
      for (long r = 1; r < h.ranges(spec); r++) {
        h.sendRange(spec, disk, r);
      }
      JobEvent done = h.awaitState("bad", JobState.JOB_STATE_DONE, JOB_TIMEOUT);
      assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      assertTrue(done.getProgress().getDuplicates() > 0, done.toString());
      // A late record after the end changes nothing.
      h.sendRange(spec, disk, 2);
      WriterHarness.sleep(1000);
      Path image = root.resolve("bad.qcow2");
      QemuImg.assertClean(image);
      QemuImg.assertIdentical(disk, image);
    }
  }

  private static int indexOfData(ChunkBatch b) {
    for (int i = 0; i < b.getEntriesCount(); i++) {
      if (b.getEntries(i).getKind() != EntryKind.ENTRY_KIND_ZERO) {
        return i;
      }
    }
    throw new AssertionError("no data entry in the first batch");
  }

  private static byte[] batch(ChunkBatch.Builder b) {
    return ChunkRecord.newBuilder().setBatch(b).build().toByteArray();
  }

  private static List<JobEvent> awaitRejections(WriterHarness h, int n) {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    List<JobEvent> rejected = List.of();
    while (System.nanoTime() < deadline) {
      rejected = h.events().stream().filter(e -> e.getKind() == EventKind.EVENT_KIND_RECORD_REJECTED).toList();
      if (rejected.size() >= n) {
        return rejected;
      }
      WriterHarness.sleep(200);
    }
    throw new AssertionError("expected " + n + " rejections, got " + WriterHarness.summary(rejected));
  }

  @Test
  void aStandbyTakesOverFromTheCheckpointWhenTheLeaderStops(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 24L << 20, 5);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      Writer first = h.startWriter(h.config());
      assertTrue(first.awaitLeadership(Duration.ofSeconds(30)));
      Writer second = h.startWriter(h.config());
      JobSpec spec = h.spec("takeover", disk, CS, RANGE, "t/img.qcow2");
      h.publish(spec);
      List<Long> order = WriterHarness.shuffled(h.ranges(spec), 9);
      for (int i = 0; i < 3; i++) {
        h.sendRange(spec, disk, order.get(i));
      }
      h.awaitEvent(ev -> ev.getKind() == EventKind.EVENT_KIND_PROGRESS && ev.getProgress().getRangesDone() >= 3,
          JOB_TIMEOUT, "3 ranges done");
      WriterHarness.sleep(1200); // a checkpoint or two
      // Half of the next range, then the leader stops in the middle of the job.
      List<ChunkRecord> partial = h.chunks(spec, disk, order.get(3), "p");
      h.sendChunks(spec, order.get(3), partial.subList(0, partial.size() / 2));
      WriterHarness.sleep(300);
      assertEquals(Writer.Role.STANDBY, second.role());
      first.close();
      assertTrue(second.awaitLeadership(Duration.ofSeconds(30)));
      assertTrue(second.epoch() > first.epoch());
      for (int i = 3; i < order.size(); i++) {
        h.sendRange(spec, disk, order.get(i));
      }
      JobEvent done = h.awaitState("takeover", JobState.JOB_STATE_DONE, JOB_TIMEOUT);
      assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      Path image = root.resolve("t/img.qcow2");
      QemuImg.assertClean(image);
      QemuImg.assertIdentical(disk, image);
    }
  }

  @Test
  void aLeaderWhoseSessionExpiresStopsWritingAndTheJobResumesFromTheCheckpoint(EmbeddedKafka kafka,
      EmbeddedZooKeeper zk, @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 24L << 20, 31);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      Writer w = h.startWriter(h.config());
      JobSpec spec = h.spec("expiry", disk, CS, RANGE, "expiry.qcow2");
      h.publish(spec);
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      long firstEpoch = w.epoch();
      for (long r = 0; r < 3; r++) {
        h.sendRange(spec, disk, r);
      }
      h.awaitEvent(ev -> ev.getKind() == EventKind.EVENT_KIND_PROGRESS && ev.getProgress().getRangesDone() >= 3,
          JOB_TIMEOUT, "3 ranges done");
      WriterHarness.sleep(1200);
      List<ChunkRecord> partial = h.chunks(spec, disk, 3, "p");
      h.sendChunks(spec, 3, partial.subList(0, partial.size() / 2));
      zk.expireSession(w.zookeeperClient());
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (w.epoch() == firstEpoch && System.nanoTime() < deadline) {
        WriterHarness.sleep(100);
      }
      assertTrue(w.epoch() > firstEpoch, "a new term after the expiry");
      h.sendChunks(spec, 3, partial.subList(partial.size() / 2, partial.size()));
      for (long r = 4; r < h.ranges(spec); r++) {
        h.sendRange(spec, disk, r);
      }
      JobEvent done = h.awaitState("expiry", JobState.JOB_STATE_DONE, JOB_TIMEOUT);
      assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      Path image = root.resolve("expiry.qcow2");
      QemuImg.assertClean(image);
      QemuImg.assertIdentical(disk, image);
    }
  }

  @Test
  void aLeaderThawedAfterAFreezeEndsItsTermAtOnceWithoutWaitingForZooKeeper(EmbeddedKafka kafka,
      EmbeddedZooKeeper zk, @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      java.util.concurrent.atomic.AtomicLong frozenFor = new java.util.concurrent.atomic.AtomicLong();
      Writer w = new Writer(h.config(), java.time.Clock.systemUTC(), () -> System.nanoTime() + frozenFor.get(),
          WriterClients::of)
          .start();
      try {
        assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
        long firstEpoch = w.epoch();
        // As if SIGSTOP had held the process for 20 s: its threads run on before ZooKeeper's news
        // (here the session is even intact) and must not write on in the old term.
        frozenFor.set(Duration.ofSeconds(20).toNanos());
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (w.epoch() == firstEpoch && System.nanoTime() < deadline) {
          WriterHarness.sleep(50);
        }
        assertTrue(w.epoch() > firstEpoch, "the frozen term ended and a new one recovered");
      } finally {
        w.close();
      }
    }
  }

  @Test
  void aRangeThatNeverArrivesIsRequeuedByTheTimer(EmbeddedKafka kafka, EmbeddedZooKeeper zk, @TempDir Path dir)
      throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 16L << 20, 13);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      WriterConfig c = h.config();
      Writer w = h.startWriter(c.toBuilder().rangeTimeout(Duration.ofSeconds(2)).startTimeout(Duration.ofSeconds(2)).build());
      JobSpec spec = h.spec("lost", disk, CS, RANGE, "lost.qcow2");
      h.publish(spec);
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      h.submitTasks(spec);
      for (long r : List.of(0L, 1L, 3L)) {
        h.sendRange(spec, disk, r);
      }
      JobEvent requeued = h.awaitEvent(e -> e.getKind() == EventKind.EVENT_KIND_RANGE_REQUEUED, JOB_TIMEOUT, "requeue");
      assertEquals(2, requeued.getRangeIndex(), requeued.toString());
      RangeTask task = h.tasks().stream().filter(t -> t.getAttempt() == 1).findFirst().orElseThrow();
      assertEquals(2, task.getRangeIndex());
      assertEquals(2 * RANGE, task.getOffset());
      assertEquals(RANGE, task.getLength());
      h.sendRange(spec, disk, 2);
      JobEvent done = h.awaitState("lost", JobState.JOB_STATE_DONE, JOB_TIMEOUT);
      assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      QemuImg.assertIdentical(disk, root.resolve("lost.qcow2"));
    }
  }

  @Test
  void aRangeRequeuedTooOftenFailsTheJobAndKeepsThePartFile(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 8L << 20, 17);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      WriterConfig c = h.config();
      Writer w = h.startWriter(c.toBuilder().checkpointInterval(Duration.ofMillis(300)).rangeTimeout(Duration.ofMillis(500))
          .startTimeout(Duration.ofMillis(500)).build());
      JobSpec spec = h.spec("doomed", disk, CS, RANGE, "doomed.qcow2");
      h.publish(spec);
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      h.submitTasks(spec);
      h.sendRange(spec, disk, 0);
      JobEvent failed = h.awaitState("doomed", JobState.JOB_STATE_FAILED, JOB_TIMEOUT);
      assertEquals(JobState.JOB_STATE_FAILED, failed.getState());
      assertTrue(failed.getReason().startsWith("range 1 re-queued 5 times"), failed.getReason());
      assertFalse(Files.exists(root.resolve("doomed.qcow2")));
      assertTrue(Files.exists(ImageWriter.partPath(root.resolve("doomed.qcow2"))));
    }
  }

  @Test
  void targetsOutsideTheRootFailWithoutWritingAnything(EmbeddedKafka kafka, EmbeddedZooKeeper zk, @TempDir Path dir)
      throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path outside = Files.createDirectories(dir.resolve("outside"));
    Files.createSymbolicLink(root.resolve("link"), outside);
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 4L << 20, 1);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      Writer w = h.startWriter(h.config());
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      String[][] cases = {{"abs", outside.resolve("a.qcow2").toString(), "absolute"}, {"dots", "../outside/b.qcow2", ".."},
          {"link", "link/c.qcow2", "symlink"}};
      for (String[] k : cases) {
        h.publish(h.spec(k[0], disk, CS, RANGE, k[1]));
      }
      for (String[] k : cases) {
        JobEvent e = h.awaitState(k[0], JobState.JOB_STATE_FAILED, JOB_TIMEOUT);
        assertEquals(JobState.JOB_STATE_FAILED, e.getState());
        assertTrue(e.getReason().contains(k[2]), e.getReason());
      }
      try (Stream<Path> s = Files.list(outside)) {
        assertEquals(0, s.count());
      }
    }
  }

  @Test
  void aCancelledJobLosesItsPartFileAndCheckpoint(EmbeddedKafka kafka, EmbeddedZooKeeper zk, @TempDir Path dir)
      throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 16L << 20, 19);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      Writer w = h.startWriter(h.config());
      JobSpec spec = h.spec("cx", disk, CS, RANGE, "cx.qcow2");
      h.publish(spec);
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      h.sendRange(spec, disk, 0);
      h.awaitEvent(e -> e.getKind() == EventKind.EVENT_KIND_RANGE_DONE, JOB_TIMEOUT, "range done");
      WriterHarness.sleep(800);
      h.publish(spec.toBuilder().setState(JobState.JOB_STATE_CANCELLED).build());
      JobEvent e = h.awaitState("cx", JobState.JOB_STATE_CANCELLED, JOB_TIMEOUT);
      assertEquals(JobState.JOB_STATE_CANCELLED, e.getState());
      try (Stream<Path> s = Files.list(root)) {
        assertEquals(List.of(), s.toList());
      }
    }
  }
}
