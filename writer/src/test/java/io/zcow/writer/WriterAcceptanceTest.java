package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class WriterAcceptanceTest {
  static final Duration JOB_TIMEOUT = Duration.ofSeconds(90);

  @BeforeAll
  static void qemu() {
    QemuImg.assumeAvailable();
  }

  @ParameterizedTest(name = "cluster {0}, range {1}")
  @CsvSource({"65536, 4194304, 24", "2097152, 8388608, 32"})
  void chunkRecordsBecomeAnIdenticalCleanImage(int clusterSize, long rangeSize, int mib, EmbeddedKafka kafka,
      EmbeddedZooKeeper zk, @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), (long) mib << 20, 7);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      Writer w = h.startWriter(h.config());
      JobSpec spec = h.spec("job1", disk, clusterSize, rangeSize, "out/disk.qcow2");
      h.publish(spec);
      assertTrue(w.awaitLeadership(Duration.ofSeconds(30)));
      h.submitTasks(spec);
      for (long r : WriterHarness.shuffled(h.ranges(spec), 3)) {
        h.sendRange(spec, disk, r);
      }
      JobEvent done = h.awaitState("job1", JobState.JOB_STATE_DONE, JOB_TIMEOUT);
      assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      Path image = root.resolve("out/disk.qcow2");
      assertEquals(Files.size(image), done.getProgress().getHostBytes());
      assertEquals(h.ranges(spec), done.getProgress().getRangesDone());
      assertFalse(Files.exists(ImageWriter.partPath(image)));
      QemuImg.assertClean(image);
      QemuImg.assertIdentical(disk, image);
      String metrics = w.metrics().scrape();
      assertTrue(metrics.contains("zcow_writer_chunk_bytes_in_total"), metrics);
      assertTrue(metrics.contains("zcow_writer_checkpoint_seconds_count"), metrics);
    }
  }
}
