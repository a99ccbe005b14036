package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EntryKind;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeTask;
import io.zcow.proto.Topics;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.source.FileSource;
import io.zcow.source.SourceCache;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import io.zcow.testkit.EmbeddedZooKeeper;
import io.zcow.testkit.EmbeddedZooKeeperExtension;
import io.zcow.testkit.QemuImg;
import io.zcow.worker.RangeCompressor;
import io.zcow.worker.RangeStats;
import io.zcow.worker.kafka.ChunkSender;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The entry checksum is what stands between a changed cluster index and the image: Kafka's batch
 * CRC is computed after the value serializer ran, so a record changed there (as by a bad NIC, a
 * bad disk under the broker or a bug between the worker's checksum and the wire) reaches the
 * writer with every Kafka check passing.
 */
@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class WriterEntryChecksumTest {
  private static final Duration JOB_TIMEOUT = Duration.ofSeconds(90);
  private static final int CS = 65536;
  private static final long RANGE = 4L << 20;
  private static final long CORRUPTED_RANGE = 1;

  @BeforeAll
  static void qemu() {
    QemuImg.assumeAvailable();
  }

  @Test
  void aClusterIndexFlippedAfterTheWorkerChecksummedItIsRefusedAndTheRangeIssuedAgain(EmbeddedKafka kafka,
      EmbeddedZooKeeper zk, @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 16L << 20, 23);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      JobSpec spec = h.spec("flip", disk, CS, RANGE, "flip.qcow2");
      Writer w = h.startLeading(spec);
      long rangeClusters = RANGE / CS;
      FlipOneClusterIndex flip = new FlipOneClusterIndex(CORRUPTED_RANGE, (CORRUPTED_RANGE + 1) * rangeClusters);
      JobEvent done;
      try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(h.kafka.producerProps(), new StringSerializer(),
          flip)) {
        done = playWorker(h, spec, disk, producer);
      }
      assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      ChunkBatch refused = flip.corrupted();
      assertTrue(refused != null, "the serializer saw a batch of range " + CORRUPTED_RANGE + " to corrupt");
      long moved = flip.movedFrom();
      assertFalse(Arrays.equals(cluster(disk, moved), cluster(disk, moved + 1)),
          "clusters " + moved + " and " + (moved + 1) + " differ, so a write at the wrong index would show");

      List<JobEvent> events = h.events();
      List<JobEvent> rejected = ofKind(events, EventKind.EVENT_KIND_RECORD_REJECTED);
      assertEquals(1, rejected.size(), WriterHarness.summary(events));
      JobEvent r = rejected.get(0);
      assertEquals(CORRUPTED_RANGE, r.getRangeIndex());
      assertEquals(Topics.chunks(h.group), r.getRecord().getTopic());
      assertTrue(r.getReason().contains("entry checksum") && r.getReason().contains("cluster " + (moved + 1)),
          r.getReason());
      assertEquals(1, w.metrics().rejectedRecords());
      assertTrue(ofKind(events, EventKind.EVENT_KIND_RANGE_REQUEUED).stream()
          .anyMatch(e -> e.getRangeIndex() == CORRUPTED_RANGE), WriterHarness.summary(events));
      assertTrue(h.tasks().stream().anyMatch(t -> t.getRangeIndex() == CORRUPTED_RANGE && t.getAttempt() == 1),
          "range " + CORRUPTED_RANGE + " issued again");
      // Nothing of the refused record was kept: the second attempt found every one of its clusters
      // fresh, and only the other batches of the first attempt came twice.
      long rangeCount = Math.min(rangeClusters, ImageGeometry.forSource(spec.getSourceSize(), CS).guestClusters()
          - CORRUPTED_RANGE * rangeClusters);
      assertEquals(rangeCount - clusters(refused), done.getProgress().getDuplicates(), done.toString());

      Path image = root.resolve("flip.qcow2");
      QemuImg.assertClean(image);
      QemuImg.assertIdentical(disk, image);
    }
  }

  /**
   * Does what a worker does with every task the writer issues, once per attempt, until the job
   * ends: compress the range with the real {@link RangeCompressor} into a {@link ChunkSender}.
   */
  private static JobEvent playWorker(WriterHarness h, JobSpec spec, Path disk, KafkaProducer<String, byte[]> producer) {
    ImageGeometry g = ImageGeometry.forSource(spec.getSourceSize(), CS);
    Set<String> served = new HashSet<>();
    long deadline = System.nanoTime() + JOB_TIMEOUT.toNanos();
    try (FileSource src = FileSource.open(disk, SourceCache.WRITEBACK); RangeCompressor rc = new RangeCompressor(src, g, 3)) {
      while (System.nanoTime() < deadline) {
        for (RangeTask t : h.tasks()) {
          String attempt = "w/" + t.getRangeIndex() + "/" + t.getAttempt();
          if (served.add(attempt)) {
            ChunkSender sender = new ChunkSender(producer, Topics.chunks(h.group), spec.getJobId(), t.getRangeIndex(),
                attempt, () -> false);
            sender.start("test-worker");
            long first = t.getOffset() / CS;
            RangeStats stats = rc.compress(first, (t.getLength() + CS - 1) / CS, sender);
            sender.finish(stats, "test-worker", 30_000);
          }
        }
        for (JobEvent e : h.events()) {
          if (e.getKind() == EventKind.EVENT_KIND_STATE && (e.getState() == JobState.JOB_STATE_DONE
              || e.getState() == JobState.JOB_STATE_FAILED)) {
            return e;
          }
        }
        WriterHarness.sleep(200);
      }
    }
    throw new AssertionError("job not done within " + JOB_TIMEOUT + "; events: " + WriterHarness.summary(h.events()));
  }

  private static List<JobEvent> ofKind(List<JobEvent> events, EventKind kind) {
    return events.stream().filter(e -> e.getKind() == kind).toList();
  }

  private static long clusters(ChunkBatch b) {
    return b.getEntriesList().stream().mapToLong(e -> e.getKind() == EntryKind.ENTRY_KIND_ZERO ? e.getCount() : 1).sum();
  }

  private static byte[] cluster(Path disk, long index) throws Exception {
    byte[] b = new byte[CS];
    try (RandomAccessFile f = new RandomAccessFile(disk.toFile(), "r")) {
      f.seek(index * CS);
      f.readFully(b);
    }
    return b;
  }

  /**
   * The value serializer of the worker's producer, changing what the worker checksummed: the first
   * data entry of the first batch of one range moves to the next cluster (inside the range, so no
   * range check catches it). Runs before the producer computes Kafka's CRC, so that one is valid.
   * Used by the producer's calling thread only.
   */
  private static final class FlipOneClusterIndex implements Serializer<byte[]> {
    private final long range;
    private final long rangeEnd;
    private ChunkBatch corrupted;
    private long movedFrom = -1;

    FlipOneClusterIndex(long range, long rangeEnd) {
      this.range = range;
      this.rangeEnd = rangeEnd;
    }

    @Override
    public byte[] serialize(String topic, byte[] value) {
      if (corrupted != null) {
        return value;
      }
      ChunkRecord record;
      try {
        record = ChunkRecord.parseFrom(value);
      } catch (com.google.protobuf.InvalidProtocolBufferException e) {
        throw new IllegalStateException("the worker sent a value that is no ChunkRecord", e);
      }
      if (!record.hasBatch() || record.getBatch().getRangeIndex() != range) {
        return value;
      }
      ChunkBatch.Builder b = record.getBatch().toBuilder();
      for (int i = 0; i < b.getEntriesCount(); i++) {
        ChunkEntry e = b.getEntries(i);
        if (e.getKind() != EntryKind.ENTRY_KIND_ZERO && e.getCluster() + 1 < rangeEnd) {
          movedFrom = e.getCluster();
          corrupted = b.setEntries(i, e.toBuilder().setCluster(movedFrom + 1)).build();
          return record.toBuilder().setBatch(corrupted).build().toByteArray();
        }
      }
      return value;
    }

    ChunkBatch corrupted() {
      return corrupted;
    }

    long movedFrom() {
      return movedFrom;
    }
  }
}
