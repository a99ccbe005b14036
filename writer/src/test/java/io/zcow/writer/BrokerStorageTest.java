package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.ChunkRecord;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Topics;
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
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.common.Node;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The writer trims what its committed checkpoints cover, so the broker holds only in-flight chunks. */
@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class BrokerStorageTest {
  static final int WINDOW = 4;

  @Test
  void retainedChunksStayWellBelowTheTotal(EmbeddedKafka kafka, EmbeddedZooKeeper zk, @TempDir Path dir)
      throws Exception {
    QemuImg.assumeAvailable();
    Path root = Files.createDirectories(dir.resolve("root"));
    // Incompressible: every cluster travels raw, so the chunk bytes are the disk's size.
    Path disk = Disks.random(dir.resolve("disk.raw"), 192L << 20, 23);
    // Small segments (space comes back only with whole segments), yet larger than any batch.
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of("segment.bytes", Integer.toString(4 << 20)))) {
      WriterConfig c = h.config();
      Writer w = h.startWriter(c.toBuilder().checkpointInterval(Duration.ofMillis(300)).build());
      JobSpec spec = h.spec("big", disk, 65536, 8L << 20, "big.qcow2");
      h.publish(spec);
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      String topic = Topics.chunks(h.group);
      AtomicLong largest = new AtomicLong();
      AtomicBoolean stop = new AtomicBoolean();
      Thread sampler = new Thread(() -> {
        while (!stop.get()) {
          largest.accumulateAndGet(retained(kafka, topic), Math::max);
          WriterHarness.sleep(100);
        }
      });
      sampler.start();
      long total = 0;
      for (long r = 0; r < h.ranges(spec); r++) {
        List<ChunkRecord> records = h.chunks(spec, disk, r, "a");
        for (ChunkRecord rec : records) {
          total += rec.getSerializedSize();
        }
        h.sendChunks(spec, r, records);
        // As the coordinator does: a bounded window of ranges beyond what the writer completed.
        long completedAtLeast = r + 1 - WINDOW;
        h.awaitEvent(e -> e.getKind() == io.zcow.proto.EventKind.EVENT_KIND_PROGRESS
            && e.getProgress().getRangesDone() >= completedAtLeast, Duration.ofSeconds(60), "window");
      }
      JobEvent done = h.awaitState("big", JobState.JOB_STATE_DONE, Duration.ofSeconds(120));
      assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      WriterHarness.sleep(2500); // a checkpoint, a trim and a retention check
      stop.set(true);
      sampler.join();
      long after = retained(kafka, topic);
      System.out.printf("chunks topic: %d MiB produced, largest retained %d MiB, %d MiB after the job%n",
          total >> 20, largest.get() >> 20, after >> 20);
      assertTrue(largest.get() < total / 3, "largest retained " + largest.get() + " of " + total);
      assertTrue(after < total / 10, "retained after the job " + after + " of " + total);
      QemuImg.assertIdentical(disk, root.resolve("big.qcow2"));
    }
  }

  /** Bytes the broker keeps for the topic, over all partitions and log dirs. */
  static long retained(EmbeddedKafka kafka, String topic) {
    try {
      List<Integer> brokers = kafka.admin().describeCluster().nodes().get(10, TimeUnit.SECONDS).stream()
          .map(Node::id).toList();
      long sum = 0;
      for (Map<String, LogDirDescription> dirs :
          kafka.admin().describeLogDirs(brokers).allDescriptions().get(10, TimeUnit.SECONDS).values()) {
        for (LogDirDescription d : dirs.values()) {
          for (var e : d.replicaInfos().entrySet()) {
            if (e.getKey().topic().equals(topic)) {
              sum += e.getValue().size();
            }
          }
        }
      }
      return sum;
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }
}
