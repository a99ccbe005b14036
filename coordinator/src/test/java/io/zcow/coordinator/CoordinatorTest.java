package io.zcow.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeRun;
import io.zcow.proto.SourceIdentity;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.proto.WireTargetCache;
import io.zcow.proto.kafka.JobBook;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.proto.kafka.TopicReader;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import com.google.protobuf.ByteString;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The coordinator against a real broker, with the test playing the writer: the coordinator
 * publishes the job and its plan, then only follows the state the writer publishes.
 */
@ExtendWith(EmbeddedKafkaExtension.class)
class CoordinatorTest {
  private static final int CLUSTER = 64 << 10;
  private static final long RANGE = 1 << 20;

  @TempDir Path dir;

  @Test
  void publishesThePlanAndEndsWithTheStateTheWriterPublishes(EmbeddedKafka kafka) throws Exception {
    // Ranges 0..7; data in 0, 2, 3, 5 and 7; holes in 1, 4 and 6.
    Path disk = Disks.sparse(dir.resolve("sparse.raw"), 8 * RANGE, 2, 0, 2 * RANGE, 3 * RANGE + 4096,
        5 * RANGE, 7 * RANGE);
    String job = kafka.uniqueName("plan");
    try (Source src = Source.open(disk, SourceCache.AUTO);
        Coordinator c = coordinator(kafka, src, spec(job, disk, 8 * RANGE), 3)) {
      c.start();
      assertTrue(c.submitted());
      JobSpec published = latest(kafka, job);
      assertEquals(JobState.JOB_STATE_SUBMITTED, published.getState());
      assertEquals(3, published.getPlan().getWindow());
      assertEquals(List.of(run(1, 1), run(4, 1), run(6, 1)), published.getPlan().getZeroRangesList());
      assertEquals(3, c.zeroRanges());
      assertNull(c.runOnce());

      publish(kafka, published.toBuilder().setState(JobState.JOB_STATE_RUNNING).setWriterEpoch(2).build());
      publish(kafka, published.toBuilder().setState(JobState.JOB_STATE_FAILED).setWriterEpoch(2)
          .setReason("test says so").build());
      Coordinator.Outcome o = null;
      for (int i = 0; i < 50 && o == null; i++) {
        o = c.runOnce();
      }
      assertEquals(JobState.JOB_STATE_FAILED, o.state());
      assertEquals("test says so", o.reason());
    }
  }

  @Test
  void aStaleStateOfADeposedWriterDoesNotEndTheJob(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.random(dir.resolve("stale.raw"), 2 * RANGE, 5);
    String job = kafka.uniqueName("stale");
    try (Source src = Source.open(disk, SourceCache.AUTO);
        Coordinator c = coordinator(kafka, src, spec(job, disk, 2 * RANGE), 2)) {
      c.start();
      JobSpec published = latest(kafka, job);
      publish(kafka, published.toBuilder().setState(JobState.JOB_STATE_RUNNING).setWriterEpoch(7).build());
      publish(kafka, published.toBuilder().setState(JobState.JOB_STATE_FAILED).setWriterEpoch(6)
          .setReason("a deposed writer's word").build());
      long end = System.nanoTime() + 1_500_000_000L;
      while (System.nanoTime() < end) {
        assertNull(c.runOnce());
      }
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
    Coordinator.Config config = new Coordinator.Config(KafkaSettings.of(kafka.bootstrapServers()),
        TopicSetup.Plan.defaults("g"), 2, Duration.ofMillis(100), Duration.ofMillis(300));
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
  void aRunningJobIsFollowedNotSubmittedAgain(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.random(dir.resolve("running.raw"), 2 * RANGE, 6);
    String job = kafka.uniqueName("running");
    JobSpec running = spec(job, disk, 2 * RANGE).toBuilder().setCreatedAtMs(1).setState(JobState.JOB_STATE_RUNNING)
        .setWriterEpoch(3).build();
    publish(kafka, running);
    try (Source src = Source.open(disk, SourceCache.AUTO);
        Coordinator c = coordinator(kafka, src, spec(job, disk, 2 * RANGE), 4)) {
      c.start();
      assertFalse(c.submitted());
      assertEquals(1, latest(kafka, job).getCreatedAtMs(), "nothing was published");
      publish(kafka, running.toBuilder().setState(JobState.JOB_STATE_DONE).build());
      Coordinator.Outcome o = null;
      for (int i = 0; i < 50 && o == null; i++) {
        o = c.runOnce();
      }
      assertTrue(o.done());
    }
  }

  @Test
  void jobTheWriterFinishedIsDoneAtOnce(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.random(dir.resolve("done.raw"), 2 * RANGE, 3);
    String job = kafka.uniqueName("done");
    publish(kafka, spec(job, disk, 2 * RANGE).toBuilder().setCreatedAtMs(1).setState(JobState.JOB_STATE_DONE)
        .setWriterEpoch(1).build());
    try (Source src = Source.open(disk, SourceCache.AUTO);
        Coordinator c = coordinator(kafka, src, spec(job, disk, 2 * RANGE), 4)) {
      c.start();
      assertTrue(c.runOnce().done());
      assertFalse(c.submitted());
    }
  }

  @Test
  void aJobWhoseSourceChangedIsRefused(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.random(dir.resolve("changed.raw"), 2 * RANGE, 8);
    String job = kafka.uniqueName("changed");
    JobSpec before = spec(job, disk, 2 * RANGE).toBuilder().setSourceIdentity(identity(1)).setCreatedAtMs(1)
        .setState(JobState.JOB_STATE_FAILED).setWriterEpoch(1).build();
    publish(kafka, before);
    try (Source src = Source.open(disk, SourceCache.AUTO);
        Coordinator c = coordinator(kafka, src, spec(job, disk, 2 * RANGE).toBuilder().setSourceIdentity(identity(2))
            .build(), 4)) {
      BadInputException e = assertThrows(BadInputException.class, c::start);
      assertTrue(e.getMessage().startsWith("source changed since the job started"), e.getMessage());
    }
  }

  private static SourceIdentity identity(int b) {
    return SourceIdentity.newBuilder().setSize(2 * RANGE).setFingerprint(ByteString.copyFrom(new byte[] {(byte) b}))
        .build();
  }

  private static RangeRun run(long first, long count) {
    return RangeRun.newBuilder().setFirst(first).setCount(count).build();
  }

  private static Coordinator coordinator(EmbeddedKafka kafka, Source src, JobSpec spec, int window) {
    Coordinator.Config config = new Coordinator.Config(KafkaSettings.of(kafka.bootstrapServers()),
        TopicSetup.Plan.defaults("g"), window, Duration.ofMillis(100), Duration.ofMinutes(3));
    Partitioner p = new Partitioner(src, ImageGeometry.forSource(src.size(), CLUSTER), RANGE);
    return new Coordinator(config, spec, p, s -> { }, Clock.systemUTC());
  }

  private static JobSpec spec(String job, Path disk, long size) {
    return JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(job)
        .setSourceUri(disk.toUri().toString()).setSourceSize(size).setVirtualSize(size).setClusterSize(CLUSTER)
        .setRangeSize(RANGE).setCodec(WireCodec.WIRE_CODEC_ZSTD).setLevel(3).setTargetPath(job + ".qcow2")
        .setTargetCache(WireTargetCache.WIRE_TARGET_CACHE_AUTO).setWriteCache(true).setWriterGroup("g").build();
  }

  private static void publish(EmbeddedKafka kafka, JobSpec spec) {
    TopicSetup.ensure(KafkaSettings.of(kafka.bootstrapServers()), TopicSetup.Plan.defaults("g"));
    try (KafkaProducer<String, byte[]> p =
        new KafkaProducer<>(KafkaSettings.of(kafka.bootstrapServers()).producer("test"))) {
      p.send(new ProducerRecord<>(Topics.JOBS, spec.getJobId(), spec.toByteArray())).get();
    } catch (Exception ex) {
      throw new AssertionError(ex);
    }
  }

  /** The job's latest spec on zcow.jobs, read as every role reads it. */
  private static JobSpec latest(EmbeddedKafka kafka, String job) {
    JobBook book = new JobBook(RecordAuth.NONE);
    try (TopicReader r = new TopicReader(new KafkaConsumer<>(KafkaSettings.of(kafka.bootstrapServers())
        .assignedConsumer("test-jobs")), Topics.JOBS, Duration.ofSeconds(20))) {
      r.readToEnd(Duration.ofSeconds(20), book::apply);
    }
    return book.get(job).orElseThrow();
  }
}
