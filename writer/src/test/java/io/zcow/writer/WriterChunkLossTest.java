package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeTask;
import io.zcow.proto.Topics;
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
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Broker data loss under the writer, on a real broker: the chunks topic's records past the
 * committed checkpoint are deleted while the writer is stopped. The next term must notice (its
 * committed offsets lie below the log start), read from where the log begins, and issue again at
 * once every range the checkpoint had outstanding — never skip one — so the image still ends
 * identical to the source.
 */
@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class WriterChunkLossTest {
  static final int CS = 65536;
  static final long RANGE = 4L << 20;
  /** Well below the start timeout (60 s): only the loss's own re-issue can finish the job in time. */
  static final Duration IN_TIME = Duration.ofSeconds(30);

  @BeforeAll
  static void qemu() {
    QemuImg.assumeAvailable();
  }

  @Test
  void chunksLostPastTheCheckpointAreIssuedAgainAndTheImageEndsIdentical(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 16L << 20, 31);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      JobSpec spec = h.spec("lost", disk, CS, RANGE, "lost.qcow2");
      Writer first = h.startLeading(spec);
      h.awaitEvent(e -> e.getKind() == EventKind.EVENT_KIND_PROGRESS && e.getProgress().getTasksIssued() >= 4,
          IN_TIME, "all 4 ranges issued");
      h.sendRange(spec, disk, 0);
      h.awaitEvent(e -> e.getKind() == EventKind.EVENT_KIND_RANGE_DONE && e.getRangeIndex() == 0, IN_TIME,
          "range 0 done");
      WriterHarness.sleep(1500); // checkpoints (every 500 ms) cover range 0 and the issued ranges 1..3
      first.close();

      // While no writer runs, workers deliver ranges 1 and 2, then the broker loses every chunk record.
      h.sendRange(spec, disk, 1);
      h.sendRange(spec, disk, 2);
      long lost = deleteAllRecords(h, Topics.chunks(h.group));
      assertTrue(lost > 0, "records were deleted");

      // Workers answer only what the next term issues: the ranges it must read again.
      Set<Long> issuedAgain = java.util.concurrent.ConcurrentHashMap.newKeySet();
      try (AutoCloseable workers = serveNewTasks(h, spec, disk, issuedAgain)) {
        // The next term reads a jobs topic compacted to the job's last state (RUNNING), so it
        // restores the ranges the checkpoint had outstanding: none of them may wait for a timeout.
        String compacted = h.kafka.uniqueName("jobs");
        h.kafka.createTopic(compacted, 1, Map.of("cleanup.policy", "compact"));
        h.send(compacted, spec.getJobId(), spec.toBuilder().setState(JobState.JOB_STATE_RUNNING).setWriterEpoch(1)
            .build().toByteArray());
        h.startWriter(h.config().toBuilder().topics(compacted, h.tasks, h.events).build());
        JobEvent done = h.awaitEvent(e -> e.getJobId().equals("lost") && e.getKind() == EventKind.EVENT_KIND_STATE
            && e.getState() != JobState.JOB_STATE_RUNNING, IN_TIME, "the job's end");
        assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      }
      assertEquals(Set.of(1L, 2L, 3L), issuedAgain, "every range not complete at the checkpoint is issued again");
      List<JobEvent> requeued = h.events().stream().filter(e -> e.getKind() == EventKind.EVENT_KIND_RANGE_REQUEUED)
          .toList();
      assertEquals(Set.of(1L, 2L, 3L), requeued.stream().map(JobEvent::getRangeIndex).collect(
          java.util.stream.Collectors.toSet()), WriterHarness.summary(requeued));
      assertTrue(requeued.stream().allMatch(e -> e.getReason().contains(lost + " records lost from")),
          WriterHarness.summary(requeued));
      Path image = root.resolve("lost.qcow2");
      QemuImg.assertClean(image);
      QemuImg.assertIdentical(disk, image);
    }
  }

  /**
   * Plays the workers for tasks issued from now on (earlier ones were served): answers each with
   * the range's chunks and notes its range.
   */
  private static AutoCloseable serveNewTasks(WriterHarness h, JobSpec spec, Path disk, Set<Long> ranges)
      throws InterruptedException {
    java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
    java.util.concurrent.CountDownLatch positioned = new java.util.concurrent.CountDownLatch(1);
    Thread t = new Thread(() -> {
      try (var c = new org.apache.kafka.clients.consumer.KafkaConsumer<String, byte[]>(h.kafka.consumerProps(null))) {
        List<TopicPartition> tps = c.partitionsFor(h.tasks).stream()
            .map(i -> new TopicPartition(h.tasks, i.partition())).toList();
        c.assign(tps);
        c.seekToEnd(tps);
        tps.forEach(c::position); // resolve the end now, before the writer issues anything
        positioned.countDown();
        while (!stop.get()) {
          for (var r : c.poll(Duration.ofMillis(100))) {
            if (Wire.rangeTask(r.value()) instanceof Wire.Decoded.Ok<RangeTask> ok
                && ok.value().getJobId().equals(spec.getJobId())) {
              long range = ok.value().getRangeIndex();
              ranges.add(range);
              h.sendRange(spec, disk, range);
            }
          }
        }
      }
    }, "new-task-worker");
    t.setDaemon(true);
    t.start();
    positioned.await();
    return () -> {
      stop.set(true);
      t.join(10_000);
    };
  }

  /** Deletes every record of {@code topic} (Admin.deleteRecords up to the end); returns how many. */
  private static long deleteAllRecords(WriterHarness h, String topic) throws Exception {
    var admin = h.kafka.admin();
    int partitions = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
    Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
    Map<TopicPartition, OffsetSpec> earliest = new HashMap<>();
    for (int p = 0; p < partitions; p++) {
      latest.put(new TopicPartition(topic, p), OffsetSpec.latest());
      earliest.put(new TopicPartition(topic, p), OffsetSpec.earliest());
    }
    var ends = admin.listOffsets(latest).all().get();
    var starts = admin.listOffsets(earliest).all().get();
    Map<TopicPartition, RecordsToDelete> delete = new HashMap<>();
    long n = 0;
    for (var e : ends.entrySet()) {
      delete.put(e.getKey(), RecordsToDelete.beforeOffset(e.getValue().offset()));
      n += e.getValue().offset() - starts.get(e.getKey()).offset();
    }
    admin.deleteRecords(delete).all().get();
    return n;
  }
}
