package io.zcow.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeTask;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.proto.WireTargetCache;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import io.zcow.testkit.EmbeddedZooKeeper;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Properties;
import org.apache.curator.framework.CuratorFramework;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The coordinator against a real broker and ZooKeeper, with the test playing the writer. */
@ExtendWith(EmbeddedKafkaExtension.class)
class CoordinatorTest {
  private static final int CLUSTER = 64 << 10;
  private static final long RANGE = 1 << 20;

  @TempDir Path dir;

  @Test
  void keepsAtMostWindowRangesOutstandingAndSubmitsMoreAsRangesComplete(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.random(dir.resolve("disk.raw"), 8 * RANGE, 1);
    String job = kafka.uniqueName("window");
    try (Source src = Source.open(disk, SourceCache.AUTO);
        Coordinator c = coordinator(kafka, null, "/unused", src, spec(job, disk, 8 * RANGE), 3)) {
      c.start();
      assertEquals(List.of(0L, 1L, 2L), tasksOf(kafka, job, 3));
      assertEquals(3, c.outstanding());

      event(kafka, job, EventKind.EVENT_KIND_RANGE_DONE, JobState.JOB_STATE_RUNNING, 1);
      List<Long> tasks = List.of();
      for (int i = 0; i < 50 && tasks.size() < 4; i++) {
        assertNull(c.runOnce());
        tasks = tasksOf(kafka, job, 0);
      }
      assertEquals(List.of(0L, 1L, 2L, 3L), tasks);
      assertEquals(3, c.outstanding());
      assertEquals(3, c.maxOutstanding());

      event(kafka, job, EventKind.EVENT_KIND_STATE, JobState.JOB_STATE_FAILED, -1);
      Coordinator.Outcome o = null;
      for (int i = 0; i < 50 && o == null; i++) {
        o = c.runOnce();
      }
      assertEquals(JobState.JOB_STATE_FAILED, o.state());
      assertEquals("test says so", o.reason());
    }
  }

  @Test
  void jobWithoutProgressIsReportedStalledOnce(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.random(dir.resolve("stall.raw"), 2 * RANGE, 4);
    String job = kafka.uniqueName("stall");
    List<JobStatus> stalls = new ArrayList<>();
    Coordinator.Listener listener = new Coordinator.Listener() {
      @Override
      public void progress(JobStatus status) {}

      @Override
      public void stalled(JobStatus status) {
        stalls.add(status);
      }
    };
    Coordinator.Config config = new Coordinator.Config(KafkaSettings.of(kafka.bootstrapServers()), null, "/unused",
        TopicSetup.Plan.defaults("g"), 2, Duration.ofMillis(100), Duration.ofMillis(300), Duration.ofSeconds(5));
    try (Source src = Source.open(disk, SourceCache.AUTO);
        Coordinator c = new Coordinator(config, spec(job, disk, 2 * RANGE),
            new Partitioner(src, ImageGeometry.forSource(src.size(), CLUSTER), RANGE), listener, Clock.systemUTC())) {
      c.start();
      long end = System.nanoTime() + 1_500_000_000L;
      while (System.nanoTime() < end) {
        assertNull(c.runOnce());
      }
      assertEquals(1, stalls.size());
      assertEquals(0, stalls.get(0).rangesDone());
      assertTrue(stalls.get(0).sinceProgress().toMillis() >= 300);
    }
  }

  @Test
  void resumedJobSubmitsOnlyMissingRanges(EmbeddedKafka kafka) throws Exception {
    EmbeddedZooKeeper zk = EmbeddedZooKeeper.shared();
    String root = zk.uniquePath("coordinator");
    // Ranges 0..7; data in 0, 2, 3, 5 and 7; holes in 1, 4 and 6.
    Path disk = Disks.sparse(dir.resolve("sparse.raw"), 8 * RANGE, 2, 0, 2 * RANGE, 3 * RANGE + 4096,
        5 * RANGE, 7 * RANGE);
    String job = kafka.uniqueName("resume");
    BitSet done = new BitSet();
    done.set(0);
    done.set(1);
    done.set(3);
    try (CuratorFramework client = zk.newClient()) {
      client.create().creatingParentsIfNeeded().forPath(root + "/g/jobs/" + job + "/ranges", done.toByteArray());
    }
    try (Source src = Source.open(disk, SourceCache.AUTO);
        Coordinator c = coordinator(kafka, zk.connectString(), root, src, spec(job, disk, 8 * RANGE), 100)) {
      c.start();
      BitSet expected = new BitSet();
      expected.set(2);
      expected.set(5);
      expected.set(7);
      assertEquals(expected, c.submittedRanges());
      assertEquals(2, c.holesSent()); // 4 and 6; 1 is complete already
      assertEquals(List.of(2L, 5L, 7L), tasksOf(kafka, job, 3));
    }
  }

  @Test
  void jobTheWriterFinishedIsDoneAtOnce(EmbeddedKafka kafka) throws Exception {
    EmbeddedZooKeeper zk = EmbeddedZooKeeper.shared();
    String root = zk.uniquePath("coordinator");
    Path disk = Disks.random(dir.resolve("done.raw"), 2 * RANGE, 3);
    String job = kafka.uniqueName("done");
    try (CuratorFramework client = zk.newClient()) {
      client.create().creatingParentsIfNeeded().forPath(root + "/g/jobs/" + job + "/state",
          "JOB_STATE_DONE 1\n".getBytes(StandardCharsets.UTF_8));
    }
    try (Source src = Source.open(disk, SourceCache.AUTO);
        Coordinator c = coordinator(kafka, zk.connectString(), root, src, spec(job, disk, 2 * RANGE), 4)) {
      c.start();
      assertTrue(c.runOnce().done());
      assertEquals(0, c.tasksSent());
    }
  }

  private static Coordinator coordinator(EmbeddedKafka kafka, String zk, String root, Source src, JobSpec spec,
      int window) {
    Coordinator.Config config = new Coordinator.Config(KafkaSettings.of(kafka.bootstrapServers()), zk, root,
        TopicSetup.Plan.defaults("g"), window, Duration.ofMillis(100), Duration.ofMinutes(3), Duration.ofSeconds(5));
    Partitioner p = new Partitioner(src, ImageGeometry.forSource(src.size(), CLUSTER), RANGE);
    return new Coordinator(config, spec, p, s -> { }, Clock.systemUTC());
  }

  private static JobSpec spec(String job, Path disk, long size) {
    return JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(job)
        .setSourceUri(disk.toUri().toString()).setSourceSize(size).setVirtualSize(size).setClusterSize(CLUSTER)
        .setRangeSize(RANGE).setCodec(WireCodec.WIRE_CODEC_ZSTD).setLevel(3).setTargetPath(job + ".qcow2")
        .setTargetCache(WireTargetCache.WIRE_TARGET_CACHE_AUTO).setWriteCache(true).setWriterGroup("g").build();
  }

  private static void event(EmbeddedKafka kafka, String job, EventKind kind, JobState state, long range) {
    JobEvent e = JobEvent.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(job).setKind(kind)
        .setState(state).setRangeIndex(range).setReason(state == JobState.JOB_STATE_FAILED ? "test says so" : "")
        .build();
    try (KafkaProducer<String, byte[]> p =
        new KafkaProducer<>(KafkaSettings.of(kafka.bootstrapServers()).producer("test"))) {
      p.send(new ProducerRecord<>(Topics.EVENTS, job, e.toByteArray())).get();
    } catch (Exception ex) {
      throw new AssertionError(ex);
    }
  }

  /** Range indexes of the job's tasks on zcow.tasks, in range order; waits for at least {@code atLeast}. */
  private static List<Long> tasksOf(EmbeddedKafka kafka, String job, int atLeast) {
    Properties props = KafkaSettings.of(kafka.bootstrapServers()).assignedConsumer("test-tasks");
    List<Long> ranges = new ArrayList<>();
    try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(props)) {
      List<TopicPartition> parts = c.partitionsFor(Topics.TASKS).stream()
          .map(p -> new TopicPartition(p.topic(), p.partition())).toList();
      c.assign(parts);
      c.seekToBeginning(parts);
      var end = c.endOffsets(parts);
      long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
      while (System.nanoTime() < deadline) {
        for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(200))) {
          if (Wire.rangeTask(r.value()) instanceof Wire.Decoded.Ok<RangeTask> ok && ok.value().getJobId().equals(job)) {
            ranges.add(ok.value().getRangeIndex());
          }
        }
        boolean atEnd = parts.stream().allMatch(tp -> c.position(tp) >= end.get(tp));
        if (atEnd && ranges.size() >= atLeast) {
          break;
        }
      }
    }
    ranges.sort(null);
    return ranges;
  }
}
