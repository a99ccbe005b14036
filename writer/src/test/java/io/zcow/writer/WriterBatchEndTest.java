package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EntryKind;
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
import io.zcow.testkit.QemuImg;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A job that ends inside a batch of records (bad data at its last attempt) is ended between
 * batches: the checkpoint it takes covers exactly what was applied, so a kill -9 of the writer
 * right after it loses nothing of the other job whose records shared that batch.
 */
@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class WriterBatchEndTest {
  private static final long RANGE = 1L << 20;

  @Test
  void badDataAtTheLastAttemptThenKillNineLosesNothingOfTheOtherJob(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    QemuImg.assumeAvailable();
    Path root = Files.createDirectories(dir.resolve("root"));
    Path a = Disks.mixed(dir.resolve("a.raw"), RANGE, 70);
    Path b = Disks.mixed(dir.resolve("b.raw"), 2 * RANGE, 71);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      JobSpec sa = h.spec("a", a, 65536, RANGE, "a.qcow2");
      JobSpec sb = h.spec("b", b, 65536, RANGE, "b.qcow2");
      Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-cp", System.getProperty("java.class.path"), WriterMain.class.getName(), kafka.bootstrapServers(),
          zk.connectString(), root.toString(), h.group, h.jobs, h.tasks, h.events, h.zkRoot, "256", "0", "1", "1000")
          .redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile()).start();
      try {
        h.publish(sa);
        h.publish(sb);
        h.awaitEvent(e -> e.getJobId().equals("b") && e.getState() == JobState.JOB_STATE_RUNNING,
            Duration.ofSeconds(60), "the child opens b");
        h.awaitEvent(e -> e.getJobId().equals("a") && e.getState() == JobState.JOB_STATE_RUNNING,
            Duration.ofSeconds(60), "the child opens a");
        byte[] bad = badBatch("a");
        h.sendChunk(Wire.rangeKey("a", 0), bad); // attempt 0 refused: a is issued again (its last attempt)
        h.awaitEvent(e -> e.getKind() == EventKind.EVENT_KIND_RANGE_REQUEUED, Duration.ofSeconds(60), "re-issue");
        WriterHarness.sleep(1200); // past the range timeout: bad data is answered again
        // One batch for the consumer: b's range 0, then a's bad data at its last attempt, then more of b.
        List<ChunkRecord> b0 = h.chunks(sb, b, 0, "b0");
        h.sendChunks(sb, 0, b0.subList(0, b0.size() - 1));
        h.sendChunk(Wire.rangeKey("a", 0), bad);
        h.sendChunks(sb, 0, b0.subList(b0.size() - 1, b0.size()));
        h.awaitEvent(e -> e.getJobId().equals("a") && e.getState() == JobState.JOB_STATE_FAILED,
            Duration.ofSeconds(60), "a failed");
        child.destroyForcibly(); // kill -9: only what the last checkpoint committed survives
        child.waitFor();
        Writer w = h.startWriter(h.config());
        assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
        h.sendRange(sb, b, 1);
        JobEvent done = h.awaitEvent(e -> e.getJobId().equals("b") && e.getKind() == EventKind.EVENT_KIND_STATE
            && (e.getState() == JobState.JOB_STATE_DONE || e.getState() == JobState.JOB_STATE_FAILED),
            Duration.ofSeconds(60), "b done");
        assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
        assertTrue(h.events().stream().noneMatch(e -> e.getJobId().equals("b")
            && e.getKind() == EventKind.EVENT_KIND_RANGE_REQUEUED), "nothing of b was lost: " + WriterHarness.summary(h.events()));
        QemuImg.assertClean(root.resolve("b.qcow2"));
        QemuImg.assertIdentical(b, root.resolve("b.qcow2"));
      } finally {
        child.destroyForcibly();
      }
    }
  }

  /** A batch of job {@code job}, range 0, whose entry's CRC does not match. */
  private static byte[] badBatch(String job) {
    return ChunkRecord.newBuilder().setBatch(ChunkBatch.newBuilder().setFormatVersion(Wire.FORMAT_VERSION)
        .setJobId(job).setRangeIndex(0).setAttemptId("bad").addEntries(ChunkEntry.newBuilder()
            .setKind(EntryKind.ENTRY_KIND_RAW).setCluster(0).setPayload(com.google.protobuf.ByteString.copyFrom(
                new byte[65536])).setCrc32C(12345))).build().toByteArray();
  }
}
