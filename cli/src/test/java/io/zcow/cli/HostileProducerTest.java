package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static io.zcow.cli.Forgeries.batch;
import static io.zcow.cli.Forgeries.data;
import static io.zcow.cli.Forgeries.forgedRangeDone;
import static io.zcow.cli.Forgeries.garbage;
import static io.zcow.cli.Forgeries.task;
import static io.zcow.cli.Forgeries.validChecksumOverWrongData;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.zcow.cli.embedded.DevCluster;
import io.zcow.cli.embedded.HostPort;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import io.zcow.worker.kafka.Worker;
import io.zcow.worker.kafka.WorkerConfig;
import io.zcow.writer.Writer;
import io.zcow.writer.WriterConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A hostile producer in this JVM writes garbage, truncated, replayed and forged records into the
 * chunks topic and zcow.tasks while a job runs on a cluster of one (broker, ZooKeeper, writer and
 * worker in-process, the job submitted by {@code zcow backup --kafka}). The job must end with an
 * image identical to the source and clean, and every forgery must have been refused and counted.
 */
class HostileProducerTest {
  private static final long MIB = 1 << 20;
  private static final int CS = 64 << 10;
  private static final long DISK = 24 * MIB;
  private static final long RANGE = MIB;
  private static final long RANGES = DISK / RANGE;
  private static final long CLUSTERS_PER_RANGE = RANGE / CS;
  private static final Duration PATIENCE = Duration.ofSeconds(90);

  @TempDir Path dir;

  @BeforeAll
  static void qemu() {
    QemuImg.assumeAvailable();
  }

  @Test
  void withAKeyEveryUnauthenticatedRecordIsRefusedAndTheImageIsIdentical() throws Exception {
    Path keyFile = dir.resolve("cluster.key");
    byte[] key = new byte[32];
    new Random(1).nextBytes(key);
    Files.write(keyFile, key);
    Files.setPosixFilePermissions(keyFile, PosixFilePermissions.fromString("rw-------"));
    byte[] otherKey = key.clone();
    otherKey[0] ^= 1;
    RecordAuth auth = RecordAuth.fromFile(keyFile);
    RecordAuth other = RecordAuth.withKey(otherKey);

    Path otherFile = Files.write(dir.resolve("other.key"), otherKey);
    Result r = run("keyed", auth, List.of("--auth-key-file", keyFile.toString()), otherFile, (h, job) -> {
      ConsumerRecord<String, byte[]> genuine = h.firstRecord(Topics.chunks(WriterConfig.DEFAULT_GROUP), job);
      assertNotNull(genuine.headers().lastHeader(RecordAuth.HEADER), "the worker signs its chunks");
      ConsumerRecord<String, byte[]> genuineTask = h.firstRecord(Topics.TASKS, job);
      String chunks = Topics.chunks(WriterConfig.DEFAULT_GROUP);
      long last = RANGES - 1;
      byte[] wrongData = validChecksumOverWrongData(job, last, last * CLUSTERS_PER_RANGE, CS);
      // Into the chunks topic: 8 records without a valid MAC...
      h.send(chunks, Wire.rangeKey(job, 2), garbage(1000), null);
      h.send(chunks, genuine.key(), Arrays.copyOf(genuine.value(), genuine.value().length / 2), genuine.headers());
      h.send(chunks, Wire.rangeKey("nope", 0), batch("nope", 0, data(0, new byte[100])), null);
      h.send(chunks, Wire.rangeKey(job, 0), batch(job, 0, data(100_000, new byte[100])), null);
      h.send(chunks, Wire.rangeKey(job, 0), batch(job, 0, data(0, new byte[CS])), null);
      h.send(chunks, Wire.rangeKey(job, 5), forgedRangeDone(job, 5, CLUSTERS_PER_RANGE), null);
      h.send(chunks, Wire.rangeKey(job, last), wrongData, null);
      h.sendSigned(other, chunks, Wire.rangeKey(job, last), wrongData);
      // ... and one genuine record replayed: it verifies, and the writer keeps the first copy.
      h.send(chunks, genuine.key(), genuine.value(), genuine.headers());
      // Into zcow.tasks: 6 records without a valid MAC, and one genuine task replayed (done twice).
      h.send(Topics.TASKS, Wire.rangeKey(job, 1), garbage(300), null);
      h.send(Topics.TASKS, Wire.rangeKey(job, last), task(job, last, last * RANGE, RANGE), null);
      h.send(Topics.TASKS, Wire.rangeKey("nope", 0), task("nope", 0, 0, RANGE), null);
      h.send(Topics.TASKS, Wire.rangeKey(job, 3), task(job, 3, 100 * DISK, RANGE), null);
      h.sendSigned(other, Topics.TASKS, Wire.rangeKey(job, last), task(job, last, last * RANGE, RANGE));
      h.send(Topics.TASKS, genuine.key(), genuine.value(), genuine.headers()); // a chunk moved to another topic
      h.send(Topics.TASKS, genuineTask.key(), genuineTask.value(), genuineTask.headers());
    });

    assertEquals(0, r.backup.exitCode(), r.backup.err());
    assertFalse(r.targetExistedAfterForgeries, "the forgeries were sent while the job ran");
    QemuImg.assertClean(r.image);
    QemuImg.assertIdentical(r.source, r.image);
    assertTrue(r.writerUnauthenticated >= 8, "writer refused " + r.writerUnauthenticated);
    assertEquals(0, r.writerRejected, "no forgery got as far as validation");
    assertTrue(r.writerDuplicates >= 1, "the replayed chunk was a duplicate: " + r.writerDuplicates);
    assertTrue(r.workerUnauthenticated >= 6, "worker refused " + r.workerUnauthenticated + " tasks");
    assertTrue(r.events.stream().anyMatch(e -> e.getKind() == EventKind.EVENT_KIND_RECORD_REJECTED
        && e.getReason().contains("MAC") && e.getRecord().getTopic().startsWith("zcow.chunks.")), r.summary());
    assertTrue(r.events.stream().anyMatch(e -> e.getKind() == EventKind.EVENT_KIND_TASK_REJECTED
        && e.getReason().contains("MAC")), r.summary());
    assertTrue(r.events.stream().noneMatch(e -> e.getKind() == EventKind.EVENT_KIND_RANGE_REQUEUED),
        "a forgery never makes the writer re-queue a range: " + r.summary());
    long reports = r.events.stream().filter(e -> e.getReason().contains("MAC")).count();
    assertTrue(reports < 8 + 6, "reports are rate limited: " + reports);

    // A role with another key sees nothing of the cluster, and says why.
    assertEquals(0, r.statusWithOtherKey.exitCode(), r.statusWithOtherKey.err());
    assertTrue(r.statusWithOtherKey.err().contains("without a valid MAC were ignored"), r.statusWithOtherKey.err());
  }

  @Test
  void withoutAKeyStructuralForgeriesAreRefusedAndTheImageIsIdentical() throws Exception {
    Result r = run("open", RecordAuth.NONE, List.of("--insecure"), null, (h, job) -> {
      ConsumerRecord<String, byte[]> genuine = h.firstRecord(Topics.chunks(WriterConfig.DEFAULT_GROUP), job);
      String chunks = Topics.chunks(WriterConfig.DEFAULT_GROUP);
      // Into the chunks topic: garbage, truncated, wrong job, cluster out of range, oversized
      // payload — refused by validation — and a forged RangeDone, which changes nothing.
      h.send(chunks, Wire.rangeKey(job, 2), garbage(1000), null);
      h.send(chunks, genuine.key(), Arrays.copyOf(genuine.value(), genuine.value().length / 2), null);
      h.send(chunks, Wire.rangeKey("nope", 0), batch("nope", 0, data(0, new byte[100])), null);
      h.send(chunks, Wire.rangeKey(job, 0), batch(job, 0, data(100_000, new byte[100])), null);
      h.send(chunks, Wire.rangeKey(job, 0), batch(job, 0, data(0, new byte[CS])), null);
      h.send(chunks, Wire.rangeKey(job, RANGES - 1), forgedRangeDone(job, RANGES - 1, CLUSTERS_PER_RANGE), null);
      // Into zcow.tasks: garbage, an unknown job, a range outside the disk.
      h.send(Topics.TASKS, Wire.rangeKey(job, 1), garbage(300), null);
      h.send(Topics.TASKS, Wire.rangeKey("nope", 0), task("nope", 0, 0, RANGE), null);
      h.send(Topics.TASKS, Wire.rangeKey(job, 3), task(job, 3, 100 * DISK, RANGE), null);
    });

    assertEquals(0, r.backup.exitCode(), r.backup.err());
    assertFalse(r.targetExistedAfterForgeries, "the forgeries were sent while the job ran");
    QemuImg.assertClean(r.image);
    QemuImg.assertIdentical(r.source, r.image);
    assertEquals(0, r.writerUnauthenticated);
    assertTrue(r.writerRejected >= 5, "writer rejected " + r.writerRejected);
    assertTrue(r.workerRejected >= 3, "worker rejected " + r.workerRejected + " tasks");
    assertTrue(r.events.stream().filter(e -> e.getKind() == EventKind.EVENT_KIND_RECORD_REJECTED).count() >= 5,
        r.summary());
  }

  // ---- the run ------------------------------------------------------------------------------

  /** What the hostile producer does once the job is under way. */
  private interface Attack {
    void run(Hostile h, String job) throws Exception;
  }

  private record Result(Path source, Path image, CliRun backup, boolean targetExistedAfterForgeries,
      long writerUnauthenticated, long writerRejected, long writerDuplicates, long workerUnauthenticated,
      long workerRejected, List<JobEvent> events, CliRun statusWithOtherKey) {
    String summary() {
      StringBuilder s = new StringBuilder();
      for (JobEvent e : events) {
        if (e.getKind() != EventKind.EVENT_KIND_PROGRESS) {
          s.append(e.getKind()).append(' ').append(e.getReason()).append("; ");
        }
      }
      return s.toString();
    }
  }

  /** @param otherKey when not null, {@code zcow status} runs with this key file once the job is done */
  private Result run(String name, RecordAuth auth, List<String> keyArgs, Path otherKey, Attack attack)
      throws Exception {
    Path source = Disks.random(dir.resolve(name + ".raw"), DISK, 7);
    Path root = Files.createDirectory(dir.resolve(name + "-root"));
    String job = "hostile-" + name;
    try (DevCluster cluster = DevCluster.start(HostPort.loopbackAnyPort(), HostPort.loopbackAnyPort(), null)) {
      String kafka = cluster.broker().bootstrapServers();
      String zk = cluster.zooKeeper().connectString();
      WriterConfig wc = WriterConfig.builder(kafka, zk, root).auth(auth).checkpointInterval(Duration.ofSeconds(1))
          .progressInterval(Duration.ofSeconds(1)).build();
      // The read limit keeps the job running while the forgeries arrive (24 MiB at 3 MB/s: ~8 s).
      try (Writer writer = new Writer(wc, Clock.systemUTC()).start();
          Worker worker = new Worker(WorkerConfig.builder(KafkaSettings.of(kafka).withAuth(auth)).threads(2)
              .maxReadBytesPerSecond(3e6).build(), new SimpleMeterRegistry(), Clock.systemUTC());
          Hostile hostile = new Hostile(kafka)) {
        worker.start();
        List<String> args = new ArrayList<>(List.of("backup", "--kafka", kafka, "--zookeeper", zk, "--range-size", "1m",
            "--window", "2", "--progress", "none", "--job-id", job));
        args.addAll(keyArgs);
        args.addAll(List.of(source.toString(), name + ".qcow2"));
        CompletableFuture<CliRun> backup = CompletableFuture.supplyAsync(() -> CliRun.of(args.toArray(String[]::new)));

        attack.run(hostile, job);
        hostile.producer.flush();
        boolean existed = Files.exists(root.resolve(name + ".qcow2"));

        CliRun done = backup.get(PATIENCE.toSeconds(), TimeUnit.SECONDS);
        // The worker takes the forged tasks in turn with the genuine ones; give it time for the last.
        long expectTasks = auth.enabled() ? 6 : 3;
        Supplier<Long> tasksRefused = auth.enabled() ? worker.metrics()::tasksUnauthenticated
            : worker.metrics()::tasksRejected;
        awaitAtLeast(tasksRefused, expectTasks);
        List<JobEvent> events = hostile.events();
        CliRun status = otherKey == null ? null
            : CliRun.of("status", "--kafka", kafka, "--auth-key-file", otherKey.toString());
        return new Result(source, root.resolve(name + ".qcow2"), done, existed,
            writer.metrics().unauthenticatedRecords(), writer.metrics().rejectedRecords(),
            counter(writer.metrics().scrape(), "zcow_writer_duplicate_clusters_total"),
            worker.metrics().tasksUnauthenticated(), worker.metrics().tasksRejected(), events, status);
      }
    }
  }

  private static void awaitAtLeast(Supplier<Long> value, long n) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (value.get() < n && System.nanoTime() < deadline) {
      Thread.sleep(100);
    }
  }

  private static long counter(String scrape, String name) {
    Matcher m = Pattern.compile("(?m)^" + name + "\\{[^}]*\\} ([0-9.eE+]+)$").matcher(scrape);
    return m.find() ? (long) Double.parseDouble(m.group(1)) : -1;
  }

  /** The hostile producer, and what it can read. */
  private static final class Hostile implements AutoCloseable {
    final KafkaSettings settings;
    final KafkaProducer<String, byte[]> producer;

    Hostile(String kafka) {
      settings = KafkaSettings.of(kafka);
      producer = new KafkaProducer<>(settings.producer("hostile"));
    }

    void send(String topic, String key, byte[] value, Headers headers) throws Exception {
      Headers h = headers == null ? new RecordHeaders() : new RecordHeaders(headers.toArray());
      producer.send(new ProducerRecord<>(topic, null, key, value, h)).get(30, TimeUnit.SECONDS);
    }

    void sendSigned(RecordAuth auth, String topic, String key, byte[] value) throws Exception {
      producer.send(auth.record(topic, key, value)).get(30, TimeUnit.SECONDS);
    }

    /** The first record of {@code job} on {@code topic}, waiting for the job to produce one. */
    ConsumerRecord<String, byte[]> firstRecord(String topic, String job) {
      return await(topic, r -> r.key() != null && r.key().startsWith(job + "/") && r.value() != null);
    }

    List<JobEvent> events() {
      List<JobEvent> out = new ArrayList<>();
      try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(settings.assignedConsumer("hostile-events"))) {
        List<TopicPartition> tps = c.partitionsFor(Topics.EVENTS).stream()
            .map(i -> new TopicPartition(i.topic(), i.partition())).toList();
        c.assign(tps);
        c.seekToBeginning(tps);
        var end = c.endOffsets(tps);
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp)) && System.nanoTime() < deadline) {
          for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(100))) {
            if (Wire.jobEvent(r.value()) instanceof Wire.Decoded.Ok<JobEvent> ok) {
              out.add(ok.value());
            }
          }
        }
      }
      return out;
    }

    private ConsumerRecord<String, byte[]> await(String topic, Predicate<ConsumerRecord<String, byte[]>> p) {
      long deadline = System.nanoTime() + PATIENCE.toNanos();
      try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(settings.assignedConsumer("hostile-" + topic))) {
        while (System.nanoTime() < deadline) {
          var infos = c.partitionsFor(topic, Duration.ofSeconds(5));
          if (infos == null || infos.isEmpty()) {
            sleep(100);
            continue;
          }
          if (c.assignment().isEmpty()) {
            List<TopicPartition> tps = infos.stream().map(i -> new TopicPartition(i.topic(), i.partition())).toList();
            c.assign(tps);
            c.seekToBeginning(tps);
          }
          for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(200))) {
            if (p.test(r)) {
              return r;
            }
          }
        }
      }
      throw new AssertionError("no record of the job on " + topic + " within " + PATIENCE);
    }

    private static void sleep(long ms) {
      try {
        Thread.sleep(ms);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    @Override
    public void close() {
      producer.close(Duration.ofSeconds(5));
    }
  }
}
