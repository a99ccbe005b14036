package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.ByteString;
import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EntryChecksum;
import io.zcow.proto.EntryKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeDone;
import io.zcow.proto.RangeTask;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.proto.WireTargetCache;
import io.zcow.qcow2.ClusterKind;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.testkit.EmbeddedZooKeeper;
import io.zcow.testkit.KafkaFixture;
import io.zcow.worker.ClusterSink;
import io.zcow.source.FileSource;
import io.zcow.worker.RangeCompressor;
import io.zcow.worker.RangeStats;
import io.zcow.source.SourceCache;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * One test's own topics, znodes and target root, a producer that plays coordinator and workers
 * (JobSpecs, RangeTasks, chunk records compressed with the real {@link RangeCompressor}), and
 * readers of the events and tasks topics.
 */
final class WriterHarness implements AutoCloseable {
  static final int CHUNK_PARTITIONS = 3;
  private static final int BATCH_BYTES = 1 << 20;

  final KafkaFixture kafka;
  final EmbeddedZooKeeper zk;
  final Path root;
  final String group;
  final String jobs;
  final String tasks;
  final String events;
  final String zkRoot;
  final KafkaProducer<String, byte[]> producer;
  private final List<Writer> writers = new ArrayList<>();

  WriterHarness(KafkaFixture kafka, EmbeddedZooKeeper zk, Path root, Map<String, String> chunkTopicConfig) {
    this.kafka = kafka;
    this.zk = zk;
    this.root = root;
    this.group = kafka.uniqueName("g");
    this.jobs = kafka.uniqueName("jobs");
    this.tasks = kafka.uniqueName("tasks");
    this.events = kafka.uniqueName("events");
    this.zkRoot = zk.uniquePath("zcow");
    kafka.createTopic(jobs, 1, Map.of("cleanup.policy", "compact"));
    kafka.createTopic(tasks, 2, Map.of());
    kafka.createTopic(events, 1, Map.of());
    Map<String, String> chunks = new java.util.HashMap<>(chunkTopicConfig);
    chunks.putIfAbsent("max.message.bytes", Integer.toString(KafkaFixture.MAX_MESSAGE_BYTES));
    kafka.createTopic(Topics.chunks(group), CHUNK_PARTITIONS, chunks);
    Map<String, Object> props = kafka.producerProps();
    props.put("linger.ms", 5);
    this.producer = new KafkaProducer<>(props);
  }

  WriterConfig config() {
    return config(kafka.bootstrapServers());
  }

  /** {@link #config()} with other bootstrap servers (a proxy in front of the broker). */
  WriterConfig config(String bootstrapServers) {
    return WriterConfig.builder(bootstrapServers, zk.connectString(), root).group(group)
        .topics(jobs, tasks, events).zkRoot(zkRoot).checkpointInterval(Duration.ofMillis(500))
        .rangeTimeout(Duration.ofSeconds(60)).startTimeout(Duration.ofSeconds(60)).progressInterval(Duration.ofMillis(300))
        .build();
  }

  Writer startWriter(WriterConfig config) {
    Writer w = new Writer(config, Clock.systemUTC()).start();
    writers.add(w);
    return w;
  }

  /** Starts a writer with {@link #config()}, publishes {@code spec} and waits until the writer leads. */
  Writer startLeading(JobSpec spec) throws InterruptedException {
    Writer w = startWriter(config());
    publish(spec);
    if (!w.awaitLeadership(Duration.ofSeconds(30))) {
      fail("the writer did not lead within 30 s");
    }
    return w;
  }

  JobSpec spec(String id, Path source, int clusterSize, long rangeSize, String target) {
    long size = source.toFile().length();
    return JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(id).setSourceUri(source.toUri().toString())
        .setSourceSize(size).setVirtualSize((size + 511) & ~511L).setClusterSize(clusterSize).setRangeSize(rangeSize)
        .setCodec(WireCodec.WIRE_CODEC_ZSTD).setLevel(3).setTargetPath(target)
        .setTargetCache(WireTargetCache.WIRE_TARGET_CACHE_AUTO).setWriteCache(true).setWriterGroup(group)
        .setCreatedAtMs(System.currentTimeMillis()).setState(JobState.JOB_STATE_SUBMITTED).build();
  }

  void publish(JobSpec spec) {
    send(jobs, spec.getJobId(), spec.toByteArray());
  }

  long ranges(JobSpec spec) {
    return (spec.getVirtualSize() + spec.getRangeSize() - 1) / spec.getRangeSize();
  }

  void submitTasks(JobSpec spec) {
    for (long r = 0; r < ranges(spec); r++) {
      RangeTask t = RangeTask.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(spec.getJobId())
          .setRangeIndex(r).setOffset(r * spec.getRangeSize())
          .setLength(Math.min(spec.getRangeSize(), spec.getSourceSize() - r * spec.getRangeSize())).build();
      send(tasks, Wire.rangeKey(spec.getJobId(), r), t.toByteArray());
    }
  }

  /** The chunk records of one range as a worker would produce them: ~1 MiB batches, then RangeDone. */
  List<ChunkRecord> chunks(JobSpec spec, Path source, long range, String attempt) {
    ImageGeometry g = ImageGeometry.forSource(spec.getSourceSize(), spec.getClusterSize());
    long rangeClusters = spec.getRangeSize() / spec.getClusterSize();
    long first = range * rangeClusters;
    long count = Math.min(rangeClusters, g.guestClusters() - first);
    List<ChunkRecord> out = new ArrayList<>();
    int[] batches = {0};
    ChunkBatch.Builder[] batch = {newBatch(spec, range, attempt)};
    int[] bytes = {0};
    ClusterSink sink = new ClusterSink() {
      @Override
      public void cluster(long guest, ClusterKind kind, ByteBuffer payload) {
        if (bytes[0] + payload.remaining() > BATCH_BYTES && batch[0].getEntriesCount() > 0) {
          flush();
        }
        batch[0].addEntries(EntryChecksum.seal(ChunkEntry.newBuilder()
            .setKind(kind == ClusterKind.RAW ? EntryKind.ENTRY_KIND_RAW : EntryKind.ENTRY_KIND_COMPRESSED)
            .setCluster(guest).setPayload(ByteString.copyFrom(payload.duplicate()))));
        bytes[0] += payload.remaining();
      }

      @Override
      public void zeros(long firstGuest, long n) {
        batch[0].addEntries(EntryChecksum.seal(ChunkEntry.newBuilder().setKind(EntryKind.ENTRY_KIND_ZERO)
            .setCluster(firstGuest).setCount(n)));
      }

      void flush() {
        out.add(ChunkRecord.newBuilder().setBatch(batch[0]).build());
        batches[0]++;
        batch[0] = newBatch(spec, range, attempt);
        bytes[0] = 0;
      }
    };
    RangeStats stats;
    try (FileSource src = FileSource.open(source, SourceCache.WRITEBACK);
        RangeCompressor rc = new RangeCompressor(src, g, 3)) {
      stats = rc.compress(first, count, sink);
    }
    if (batch[0].getEntriesCount() > 0) {
      out.add(ChunkRecord.newBuilder().setBatch(batch[0]).build());
      batches[0]++;
    }
    out.add(ChunkRecord.newBuilder().setDone(RangeDone.newBuilder().setFormatVersion(Wire.FORMAT_VERSION)
        .setJobId(spec.getJobId()).setRangeIndex(range).setAttemptId(attempt).setZeroClusters(stats.zeroClusters())
        .setRawClusters(stats.rawClusters()).setCompressedClusters(stats.compressedClusters())
        .setBytesRead(stats.bytesRead()).setPayloadBytes(stats.payloadBytes())
        .setBatches(batches[0]).setWorker("test")).build());
    return out;
  }

  private static ChunkBatch.Builder newBatch(JobSpec spec, long range, String attempt) {
    return ChunkBatch.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(spec.getJobId()).setRangeIndex(range)
        .setAttemptId(attempt);
  }

  void sendChunks(JobSpec spec, long range, List<ChunkRecord> records) {
    for (ChunkRecord r : records) {
      sendChunk(Wire.rangeKey(spec.getJobId(), range), r.toByteArray());
    }
  }

  /** What a worker sends when it takes a range: its clock starts in the writer. */
  void sendStarted(JobSpec spec, long range, String attempt) {
    sendChunk(Wire.rangeKey(spec.getJobId(), range), ChunkRecord.newBuilder().setStarted(io.zcow.proto.RangeStarted
        .newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(spec.getJobId()).setRangeIndex(range)
        .setAttemptId(attempt).setWorker("test")).build().toByteArray());
  }

  void sendRange(JobSpec spec, Path source, long range) {
    sendChunks(spec, range, chunks(spec, source, range, "a-" + range));
  }

  void sendChunk(String key, byte[] value) {
    send(Topics.chunks(group), key, value);
  }

  void send(String topic, String key, byte[] value) {
    try {
      producer.send(new ProducerRecord<>(topic, key, value)).get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    } catch (ExecutionException e) {
      throw new IllegalStateException("send to " + topic + " failed", e);
    }
  }

  /** Every event so far (read from the beginning each time: tests are small). */
  List<JobEvent> events() {
    List<JobEvent> out = new ArrayList<>();
    for (byte[] b : readAll(events)) {
      out.add(((Wire.Decoded.Ok<JobEvent>) Wire.jobEvent(b)).value());
    }
    return out;
  }

  List<RangeTask> tasks() {
    List<RangeTask> out = new ArrayList<>();
    for (byte[] b : readAll(tasks)) {
      out.add(((Wire.Decoded.Ok<RangeTask>) Wire.rangeTask(b)).value());
    }
    return out;
  }

  JobEvent awaitEvent(Predicate<JobEvent> p, Duration timeout, String what) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      for (JobEvent e : events()) {
        if (p.test(e)) {
          return e;
        }
      }
      sleep(200);
    }
    fail("no event " + what + " within " + timeout + "; events: " + summary(events()));
    return null;
  }

  JobEvent awaitState(String job, JobState state, Duration timeout) {
    return awaitEvent(e -> e.getJobId().equals(job) && e.getKind() == io.zcow.proto.EventKind.EVENT_KIND_STATE
        && (e.getState() == state || e.getState() == JobState.JOB_STATE_FAILED), timeout, "state " + state);
  }

  static String summary(List<JobEvent> events) {
    return events.stream().filter(e -> e.getKind() != io.zcow.proto.EventKind.EVENT_KIND_PROGRESS)
        .map(e -> e.getKind() + "/" + e.getState() + " r=" + e.getRangeIndex() + " " + e.getReason())
        .collect(Collectors.joining("; "));
  }

  private List<byte[]> readAll(String topic) {
    Map<String, Object> props = kafka.consumerProps(null);
    try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(props)) {
      List<TopicPartition> tps = c.partitionsFor(topic).stream().map(i -> new TopicPartition(topic, i.partition())).toList();
      c.assign(tps);
      c.seekToBeginning(tps);
      Map<TopicPartition, Long> end = c.endOffsets(tps);
      List<byte[]> out = new CopyOnWriteArrayList<>();
      long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
      while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp)) && System.nanoTime() < deadline) {
        for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(100))) {
          out.add(r.value());
        }
      }
      return out;
    }
  }

  /**
   * Plays the workers from here on: every task the writer issues (for the jobs given, by id) is
   * answered with RangeStarted and the range's chunk records. Closing stops it.
   */
  AutoCloseable serveTasks(Map<String, JobSpec> specs, Map<String, Path> sources) {
    return serveTasks(specs, sources, t -> true);
  }

  /** As {@link #serveTasks(Map, Map)}, answering only the tasks {@code which} accepts. */
  AutoCloseable serveTasks(Map<String, JobSpec> specs, Map<String, Path> sources, Predicate<RangeTask> which) {
    java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
    Thread t = new Thread(() -> {
      Map<String, Object> props = kafka.consumerProps(null);
      try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(props)) {
        List<TopicPartition> tps = c.partitionsFor(tasks).stream().map(i -> new TopicPartition(tasks, i.partition()))
            .toList();
        c.assign(tps);
        c.seekToBeginning(tps);
        while (!stop.get()) {
          for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(100))) {
            if (Wire.rangeTask(r.value()) instanceof Wire.Decoded.Ok<RangeTask> ok
                && specs.containsKey(ok.value().getJobId()) && which.test(ok.value())) {
              RangeTask task = ok.value();
              JobSpec spec = specs.get(task.getJobId());
              String attempt = "served-" + task.getRangeIndex() + "-" + task.getAttempt();
              sendStarted(spec, task.getRangeIndex(), attempt);
              sendChunks(spec, task.getRangeIndex(), chunks(spec, sources.get(task.getJobId()), task.getRangeIndex(),
                  attempt));
            }
          }
        }
      }
    }, "harness-worker");
    t.setDaemon(true);
    t.start();
    return () -> {
      stop.set(true);
      t.join(10_000);
    };
  }

  static List<Long> shuffled(long n, long seed) {
    List<Long> l = IntStream.range(0, (int) n).mapToObj(i -> (long) i).collect(Collectors.toList());
    java.util.Collections.shuffle(l, new java.util.Random(seed));
    return l;
  }

  static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    for (Writer w : writers) {
      w.close();
    }
    producer.close();
  }
}
