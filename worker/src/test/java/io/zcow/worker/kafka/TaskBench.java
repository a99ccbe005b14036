package io.zcow.worker.kafka;

import io.zcow.proto.kafka.ChunkLimits;
import io.zcow.proto.kafka.KafkaSettings;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EntryChecksum;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeDone;
import io.zcow.proto.RangeLayout;
import io.zcow.proto.RangeStarted;
import io.zcow.proto.RangeTask;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.qcow2.Codec;
import io.zcow.qcow2.PayloadDecoder;
import io.zcow.testkit.KafkaFixture;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * Topics of one test on the shared broker, playing the coordinator (creates the topics, publishes
 * jobs and tasks) and the writer (reads the chunks back and rebuilds the disk), with the workers
 * it started closed at the end.
 */
final class TaskBench implements AutoCloseable {
  static final Duration PATIENCE = Duration.ofSeconds(60);

  final KafkaFixture kafka;
  final WorkerTopics topics;
  final String writerGroup;
  final String chunksTopic;
  private final KafkaProducer<String, byte[]> producer;
  private final KafkaConsumer<String, byte[]> chunkReader;
  private final KafkaConsumer<String, byte[]> eventReader;
  private final List<Worker> workers = new ArrayList<>();
  /** Every chunk record read so far, in partition order. */
  final List<ChunkRecord> chunks = new ArrayList<>();
  final List<JobEvent> events = new ArrayList<>();

  TaskBench(KafkaFixture kafka, int taskPartitions, int chunkPartitions) {
    this.kafka = kafka;
    this.topics = new WorkerTopics(kafka.uniqueName("jobs"), kafka.uniqueName("tasks"), kafka.uniqueName("events"),
        kafka.uniqueName("workers"));
    this.writerGroup = kafka.uniqueName("wg");
    this.chunksTopic = Topics.chunks(writerGroup);
    kafka.createTopic(topics.jobs(), 1, Map.of("cleanup.policy", "compact"));
    kafka.createTopic(topics.tasks(), taskPartitions, Map.of());
    kafka.createTopic(topics.events(), 1, Map.of());
    kafka.createTopic(chunksTopic, chunkPartitions,
        Map.of("max.message.bytes", Integer.toString(ChunkLimits.topicMaxMessageBytes())));
    // From the earliest offset; and a second worker gets its share of the partitions half a
    // second after joining instead of a 5 s heartbeat later.
    kafka.alterGroupConfig(topics.workerGroup(), Map.of("share.auto.offset.reset", "earliest",
        "share.heartbeat.interval.ms", "500"));
    producer = new KafkaProducer<>(kafka.producerProps());
    chunkReader = reader(chunksTopic, chunkPartitions);
    eventReader = reader(topics.events(), 1);
  }

  private KafkaConsumer<String, byte[]> reader(String topic, int partitions) {
    KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(kafka.consumerProps(null));
    List<TopicPartition> tps = new ArrayList<>();
    for (int p = 0; p < partitions; p++) {
      tps.add(new TopicPartition(topic, p));
    }
    c.assign(tps);
    c.seekToBeginning(tps);
    return c;
  }

  /** A job for {@code source} at this cluster size in 4 MiB ranges, zstd level 1. */
  JobSpec job(String id, Path source, int clusterSize) throws Exception {
    return job(id, source, clusterSize, 4L << 20);
  }

  /** A job for {@code source} at this cluster and range size, zstd level 1 (fast: tests are about plumbing). */
  JobSpec job(String id, Path source, int clusterSize, long rangeBytes) throws Exception {
    long size = Files.size(source);
    return JobSpec.newBuilder()
        .setFormatVersion(Wire.FORMAT_VERSION)
        .setJobId(id)
        .setSourceUri(source.toUri().toString())
        .setSourceSize(size)
        .setVirtualSize((size + 511) & ~511L)
        .setClusterSize(clusterSize)
        .setRangeSize(rangeBytes)
        .setCodec(WireCodec.WIRE_CODEC_ZSTD)
        .setLevel(1)
        .setTargetPath(id + ".qcow2")
        .setWriterGroup(writerGroup)
        .setState(JobState.JOB_STATE_RUNNING)
        .build();
  }

  void publish(JobSpec spec) throws Exception {
    producer.send(new ProducerRecord<>(topics.jobs(), spec.getJobId(), spec.toByteArray())).get();
  }

  /** The first tasks of every range of a job, as {@link RangeLayout} splits it. */
  static List<RangeTask> tasks(JobSpec spec) {
    RangeLayout layout = RangeLayout.of(spec);
    List<RangeTask> tasks = new ArrayList<>();
    for (int r = 0; r < layout.ranges(); r++) {
      tasks.add(layout.task(spec.getJobId(), r, 0));
    }
    return tasks;
  }

  void publish(List<RangeTask> tasks) throws Exception {
    for (RangeTask t : tasks) {
      publishRaw(Wire.rangeKey(t.getJobId(), t.getRangeIndex()), t.toByteArray());
    }
  }

  /** A writer's progress report for the job: {@code rangesWaiting} issued, not started by any worker. */
  void publishProgress(String jobId, long rangesWaiting) throws Exception {
    JobEvent e = JobEvent.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(jobId)
        .setKind(EventKind.EVENT_KIND_PROGRESS).setState(JobState.JOB_STATE_RUNNING).setOrigin("test-writer")
        .setProgress(io.zcow.proto.Progress.newBuilder().setRangesWaiting(rangesWaiting)).build();
    producer.send(new ProducerRecord<>(topics.events(), jobId, e.toByteArray())).get();
  }

  void publishRaw(String key, byte[] value) throws Exception {
    producer.send(new ProducerRecord<>(topics.tasks(), key, value)).get();
  }

  /** Worker settings for these topics, to tweak before {@link #start}: one thread, every source allowed, short waits. */
  WorkerConfig.Builder config(String origin) {
    return WorkerConfig.builder(KafkaSettings.of(kafka.bootstrapServers()))
        .topics(topics)
        .origin(origin)
        .threads(1)
        .stopGrace(Duration.ofSeconds(5))
        .releaseBackoff(Duration.ofMillis(300));
  }

  Worker start(WorkerConfig.Builder config) {
    return start(config, new SimpleMeterRegistry());
  }

  Worker start(WorkerConfig.Builder config, MeterRegistry registry) {
    Worker w = new Worker(config.build(), registry, Clock.systemUTC());
    workers.add(w);
    w.start();
    return w;
  }

  /** Reads chunks and events until {@code done} holds; fails after {@link #PATIENCE}. */
  void await(String what, BooleanSupplier done) {
    long deadline = System.nanoTime() + PATIENCE.toNanos();
    while (!done.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("timed out waiting for " + what + "; chunks read: " + chunks.size() + ", events: " + events);
      }
      readSome();
    }
  }

  void readSome() {
    for (ConsumerRecord<String, byte[]> r : chunkReader.poll(Duration.ofMillis(100))) {
      Wire.Decoded<ChunkRecord> d = Wire.chunkRecord(r.value());
      if (d instanceof Wire.Decoded.Ok<ChunkRecord> ok) {
        ChunkRecord c = ok.value();
        assertEquals(Wire.rangeKey(ref(c).job(), ref(c).range()), r.key(), "record key");
        chunks.add(c);
      } else {
        fail("undecodable chunk record: " + d);
      }
    }
    for (ConsumerRecord<String, byte[]> r : eventReader.poll(Duration.ofMillis(10))) {
      events.add(((Wire.Decoded.Ok<JobEvent>) Wire.jobEvent(r.value())).value());
    }
  }

  /** Whose a chunk record is: every body names its job, range and attempt. */
  record Ref(String job, long range, String attempt) {}

  static Ref ref(ChunkRecord c) {
    return switch (c.getBodyCase()) {
      case BATCH -> new Ref(c.getBatch().getJobId(), c.getBatch().getRangeIndex(), c.getBatch().getAttemptId());
      case DONE -> new Ref(c.getDone().getJobId(), c.getDone().getRangeIndex(), c.getDone().getAttemptId());
      case STARTED -> new Ref(c.getStarted().getJobId(), c.getStarted().getRangeIndex(), c.getStarted().getAttemptId());
      case BODY_NOT_SET -> fail("a chunk record without a body");
    };
  }

  /** Every chunk record of a job read so far, of any kind. */
  List<ChunkRecord> chunks(String jobId) {
    return chunks.stream().filter(c -> ref(c).job().equals(jobId)).toList();
  }

  /** RangeStarted records read so far for a job, in order, duplicates included. */
  List<RangeStarted> starts(String jobId) {
    return chunks.stream().filter(c -> c.hasStarted() && c.getStarted().getJobId().equals(jobId))
        .map(ChunkRecord::getStarted).toList();
  }

  /**
   * Each attempt at a range of the job opens with exactly one RangeStarted, before any of its
   * batches or its RangeDone (records of one key keep their order on their partition).
   */
  void assertEachAttemptOpensWithRangeStarted(String jobId) {
    Map<String, RangeStarted> started = new LinkedHashMap<>();
    for (ChunkRecord c : chunks(jobId)) {
      String attempt = ref(c).attempt();
      if (c.hasStarted()) {
        assertTrue(started.put(attempt, c.getStarted()) == null, "one RangeStarted for attempt " + attempt);
        assertTrue(attempt.startsWith(c.getStarted().getWorker() + "/"), "worker of " + c.getStarted());
      } else {
        RangeStarted s = started.get(attempt);
        assertTrue(s != null, "a " + c.getBodyCase() + " of attempt " + attempt + " before its RangeStarted");
        assertEquals(ref(c).range(), s.getRangeIndex(), "range of attempt " + attempt);
      }
    }
  }

  /** RangeDones read so far for a job, first per range. */
  Map<Long, RangeDone> dones(String jobId) {
    Map<Long, RangeDone> m = new LinkedHashMap<>();
    for (ChunkRecord c : chunks) {
      if (c.hasDone() && c.getDone().getJobId().equals(jobId)) {
        m.putIfAbsent(c.getDone().getRangeIndex(), c.getDone());
      }
    }
    return m;
  }

  /** All RangeDones of a job, duplicates included. */
  List<RangeDone> allDones(String jobId) {
    List<RangeDone> l = new ArrayList<>();
    for (ChunkRecord c : chunks) {
      if (c.hasDone() && c.getDone().getJobId().equals(jobId)) {
        l.add(c.getDone());
      }
    }
    return l;
  }

  /** Batches of a range read so far, whatever their attempt. */
  List<ChunkBatch> batches(String jobId, long range) {
    List<ChunkBatch> l = new ArrayList<>();
    for (ChunkRecord c : chunks) {
      if (c.hasBatch() && c.getBatch().getJobId().equals(jobId) && c.getBatch().getRangeIndex() == range) {
        l.add(c.getBatch());
      }
    }
    return l;
  }

  List<ChunkBatch> allBatches() {
    return chunks.stream().filter(ChunkRecord::hasBatch).map(ChunkRecord::getBatch).toList();
  }

  /** Events of a kind read so far. */
  List<JobEvent> events(EventKind kind) {
    return events.stream().filter(e -> e.getKind() == kind).toList();
  }

  void awaitRanges(JobSpec spec, int ranges) {
    await(ranges + " ranges of " + spec.getJobId(), () -> dones(spec.getJobId()).size() >= ranges);
  }

  /**
   * Checks that every attempt opens with its RangeStarted, then rebuilds the job's disk from the
   * attempt of each range that sent the first RangeDone, checking
   * every entry's checksum, that each cluster comes exactly once and in order, and each RangeDone's
   * counts; then compares with the source byte for byte.
   */
  void assertChunksRebuild(JobSpec spec, List<RangeTask> tasks, Path source) throws Exception {
    assertEachAttemptOpensWithRangeStarted(spec.getJobId());
    int cs = spec.getClusterSize();
    byte[] src = Files.readAllBytes(source);
    Map<Long, RangeDone> dones = dones(spec.getJobId());
    try (PayloadDecoder decoder = new PayloadDecoder(cs)) {
      ByteBuffer cluster = ByteBuffer.allocate(cs);
      for (RangeTask t : tasks) {
        RangeDone done = dones.get(t.getRangeIndex());
        assertTrue(done != null, "no RangeDone for range " + t.getRangeIndex());
        long first = t.getOffset() / cs;
        long count = (t.getLength() + cs - 1) / cs;
        byte[] rebuilt = new byte[(int) (count * cs)];
        long next = first;
        int batches = 0;
        long zero = 0;
        long raw = 0;
        long compressed = 0;
        for (ChunkRecord c : chunks) {
          if (!c.hasBatch()) {
            continue;
          }
          ChunkBatch b = c.getBatch();
          if (!b.getJobId().equals(spec.getJobId()) || b.getRangeIndex() != t.getRangeIndex()
              || !b.getAttemptId().equals(done.getAttemptId())) {
            continue;
          }
          batches++;
          assertTrue(b.getSerializedSize() <= ChunkLimits.recordBytes(cs), "batch of " + b.getSerializedSize() + " bytes");
          for (ChunkEntry e : b.getEntriesList()) {
            assertEquals(next, e.getCluster(), "clusters in order, each once");
            assertTrue(EntryChecksum.matches(e), "entry checksum of cluster " + e.getCluster());
            int at = (int) ((e.getCluster() - first) * cs);
            switch (e.getKind()) {
              case ENTRY_KIND_ZERO -> {
                next += e.getCount();
                zero += e.getCount();
                continue; // rebuilt is zero already
              }
              case ENTRY_KIND_RAW -> {
                assertEquals(cs, e.getPayload().size());
                e.getPayload().copyTo(rebuilt, at);
                raw++;
              }
              case ENTRY_KIND_COMPRESSED -> {
                cluster.clear();
                decoder.decode(Codec.ZSTD, e.getPayload().asReadOnlyByteBuffer(), cluster, "cluster " + e.getCluster());
                cluster.get(0, rebuilt, at, cs);
                compressed++;
              }
              default -> fail("entry kind " + e.getKind());
            }
            next++;
          }
        }
        assertEquals(first + count, next, "range " + t.getRangeIndex() + " covers its clusters");
        assertEquals(batches, done.getBatches());
        assertEquals(zero, done.getZeroClusters());
        assertEquals(raw, done.getRawClusters());
        assertEquals(compressed, done.getCompressedClusters());
        byte[] expected = new byte[rebuilt.length];
        int from = (int) t.getOffset();
        int n = (int) Math.min(rebuilt.length, src.length - t.getOffset());
        System.arraycopy(src, from, expected, 0, n);
        if (!Arrays.equals(expected, rebuilt)) {
          fail("range " + t.getRangeIndex() + " differs from the source at byte " + Arrays.mismatch(expected, rebuilt));
        }
      }
    }
  }

  @Override
  public void close() {
    for (Worker w : workers) {
      w.close();
    }
    producer.close(Duration.ofSeconds(5));
    chunkReader.close(Duration.ofSeconds(5));
    eventReader.close(Duration.ofSeconds(5));
  }
}
