package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.coordinator.TopicSetup;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Progress;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import io.zcow.testkit.EmbeddedZooKeeper;
import io.zcow.qcow2.ImageWriter;
import io.zcow.writer.Writer;
import io.zcow.writer.WriterConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** {@code zcow status} and {@code zcow cancel} against the shared embedded broker, fed by hand. */
@ExtendWith(EmbeddedKafkaExtension.class)
class StatusAndCancelCommandTest {
  private static final long T0 = 1_700_000_000_000L;
  private final EmbeddedKafka kafka;

  StatusAndCancelCommandTest(EmbeddedKafka kafka) {
    this.kafka = kafka;
    TopicSetup.ensure(KafkaSettings.of(kafka.bootstrapServers()), TopicSetup.Plan.defaults("status-test"));
  }


  @Test
  void showsStateProgressAndRateOfOneJob() {
    String id = kafka.uniqueName("status-run");
    publish(Topics.JOBS, id, spec(id, JobState.JOB_STATE_SUBMITTED).toByteArray());
    publish(Topics.JOBS, id, byWriter(id, JobState.JOB_STATE_RUNNING, 1).toByteArray());
    publish(Topics.EVENTS, id, progress(id, 2, 0, T0 + 2000).toByteArray());
    publish(Topics.EVENTS, id, progress(id, 10, 4, T0 + 12_000).toByteArray());
    at(T0 + 13_000);

    Out run = status(id);

    assertEquals(0, run.exitCode(), run.err());
    List<String> lines = run.out().lines().toList();
    assertEquals(1, lines.size(), run.out());
    String line = lines.get(0);
    assertTrue(line.startsWith(id + "  RUNNING  ranges 4/10  guest 4.0 MiB of 10.0 MiB"), line);
    // 4 MiB in the 10 s between the first and the latest PROGRESS.
    assertTrue(line.endsWith("  409.6 KiB/s"), line);
    assertFalse(line.contains("stalled"), line);
  }

  @Test
  void anIncrementalJobShowsItsChangedBytesTheirShareOfTheDiskAndTheirRate() {
    String id = kafka.uniqueName("status-incr");
    publish(Topics.JOBS, id, spec(id, JobState.JOB_STATE_SUBMITTED).toByteArray());
    publish(Topics.JOBS, id, byWriter(id, JobState.JOB_STATE_RUNNING, 1).toByteArray());
    // 10 MiB disk, 512 KiB of it changed: 128 KiB, then 384 KiB of those accepted, 4 s apart.
    publish(Topics.EVENTS, id, changed(progress(id, 10, 7, T0 + 1000), 128 << 10).toByteArray());
    publish(Topics.EVENTS, id, changed(progress(id, 10, 9, T0 + 5000), 384 << 10).toByteArray());
    at(T0 + 6000);

    Out run = status(id);

    assertEquals(0, run.exitCode(), run.err());
    String line = run.out().strip();
    assertTrue(line.contains("  changed 384.0 KiB of 512.0 KiB (5.0% of the disk)"), line);
    assertTrue(line.endsWith("  64.0 KiB/s"), "the rate of changed bytes: " + line);
    Out json = run(clock, "status", "--kafka", kafka.bootstrapServers(), "--output", "json", id);
    assertTrue(json.out().contains("\"changed_bytes_total\":524288,\"changed_bytes_done\":393216"), json.out());
  }

  @Test
  void aDigestIncrementalJobShowsClustersReadChangedAndSkipped() {
    String id = kafka.uniqueName("status-digest");
    JobSpec digest = spec(id, JobState.JOB_STATE_SUBMITTED).toBuilder().setBackingPath("prev.qcow2").setByDigest(true)
        .build();
    publish(Topics.JOBS, id, digest.toByteArray());
    publish(Topics.JOBS, id, digest.toBuilder().setState(JobState.JOB_STATE_RUNNING).setWriterEpoch(1).build()
        .toByteArray());
    JobEvent e = progress(id, 10, 6, T0 + 1000);
    publish(Topics.EVENTS, id, e.toBuilder().setProgress(e.getProgress().toBuilder().setClustersRead(96)
        .setClustersChanged(3).setClustersUnchanged(93)).build().toByteArray());
    at(T0 + 2000);

    Out run = status(id);

    assertEquals(0, run.exitCode(), run.err());
    String line = run.out().strip();
    assertTrue(line.contains("  clusters read 96, changed 3, skipped 93"), line);
    Out json = run(clock, "status", "--kafka", kafka.bootstrapServers(), "--output", "json", id);
    assertTrue(json.out().contains("\"clusters_read\":96,\"clusters_changed\":3,\"clusters_skipped\":93"), json.out());
  }

  private static JobEvent changed(JobEvent e, long done) {
    return e.toBuilder().setProgress(e.getProgress().toBuilder().setChangedBytesTotal(512 << 10)
        .setChangedBytesDone(done)).build();
  }

  @Test
  void saysStalledWhenARunningJobIsSilentForMinutesButNotWhenDone() {
    String quiet = kafka.uniqueName("status-quiet");
    String done = kafka.uniqueName("status-done");
    publish(Topics.JOBS, quiet, spec(quiet, JobState.JOB_STATE_SUBMITTED).toByteArray());
    publish(Topics.JOBS, quiet, byWriter(quiet, JobState.JOB_STATE_RUNNING, 1).toByteArray());
    publish(Topics.EVENTS, quiet, state(quiet, JobState.JOB_STATE_RUNNING, T0 + 1000).toByteArray()); // last sign of life
    publish(Topics.JOBS, done, spec(done, JobState.JOB_STATE_SUBMITTED).toByteArray());
    publish(Topics.JOBS, done, byWriter(done, JobState.JOB_STATE_DONE, 1).toByteArray());
    at(T0 + 11 * 60_000);

    Out run = status(null);

    assertEquals(0, run.exitCode(), run.err());
    String q = lineOf(run.out(), quiet);
    assertTrue(q.contains("RUNNING  no progress yet  stalled: nothing for 10 min"), q);
    String d = lineOf(run.out(), done);
    assertTrue(d.contains("DONE") && !d.contains("stalled"), d);
  }

  @Test
  void theStateIsTheSpecTheLeadingWriterPublishedNotAnEventNorADeposedWriter() {
    String id = kafka.uniqueName("status-failed");
    publish(Topics.JOBS, id, spec(id, JobState.JOB_STATE_SUBMITTED).toByteArray());
    publish(Topics.JOBS, id, byWriter(id, JobState.JOB_STATE_RUNNING, 2).toByteArray());
    publish(Topics.EVENTS, id, state(id, JobState.JOB_STATE_DONE, T0 + 1000).toByteArray()); // events do not own it
    publish(Topics.JOBS, id, byWriter(id, JobState.JOB_STATE_FAILED, 2).toBuilder()
        .setReason("the target file system is full").build().toByteArray());
    publish(Topics.JOBS, id, byWriter(id, JobState.JOB_STATE_RUNNING, 1).toByteArray()); // deposed, late
    at(T0 + 60 * 60_000);

    Out run = status(id);

    assertEquals(0, run.exitCode(), run.err());
    assertEquals(id + "  FAILED  no progress yet  (the target file system is full)", run.out().strip());
  }

  @Test
  void jsonOutputCarriesTheSameFactsForScripts() throws Exception {
    String id = kafka.uniqueName("status-json");
    String failed = kafka.uniqueName("status-json-failed");
    publish(Topics.JOBS, id, spec(id, JobState.JOB_STATE_SUBMITTED).toByteArray());
    publish(Topics.JOBS, id, byWriter(id, JobState.JOB_STATE_RUNNING, 1).toByteArray());
    publish(Topics.EVENTS, id, progress(id, 2, 0, T0 + 2000).toByteArray());
    publish(Topics.EVENTS, id, progress(id, 10, 4, T0 + 12_000).toByteArray());
    publish(Topics.JOBS, failed, spec(failed, JobState.JOB_STATE_SUBMITTED).toByteArray());
    publish(Topics.JOBS, failed, byWriter(failed, JobState.JOB_STATE_FAILED, 1).toBuilder()
        .setReason("range 3: \"disk\" said EIO\n").build().toByteArray());
    at(T0 + 13_000);

    Out run = run(clock, "status", "--kafka", kafka.bootstrapServers(), "--output", "json");

    assertEquals(0, run.exitCode(), run.err());
    assertEquals(1, run.out().strip().lines().count(), "one line: " + run.out());
    com.fasterxml.jackson.databind.JsonNode root = new com.fasterxml.jackson.databind.ObjectMapper().readTree(run.out());
    com.fasterxml.jackson.databind.JsonNode job = null;
    com.fasterxml.jackson.databind.JsonNode bad = null;
    for (com.fasterxml.jackson.databind.JsonNode j : root.get("jobs")) {
      if (j.get("job_id").asText().equals(id)) {
        job = j;
      } else if (j.get("job_id").asText().equals(failed)) {
        bad = j;
      }
    }
    assertTrue(job != null && bad != null, run.out());
    assertEquals("RUNNING", job.get("state").asText());
    assertEquals(4, job.get("ranges_done").asLong());
    assertEquals(10, job.get("ranges_total").asLong());
    assertEquals(4L << 20, job.get("guest_bytes_done").asLong());
    assertEquals(10L << 20, job.get("virtual_size").asLong());
    assertEquals(4L * (1 << 20) * 1000 / 10_000, job.get("bytes_per_second").asLong());
    assertTrue(job.get("reason").isNull() && job.get("stalled_minutes").isNull(), job.toString());
    assertEquals("FAILED", bad.get("state").asText());
    assertEquals("range 3: \"disk\" said EIO\n", bad.get("reason").asText(), "escaped and read back whole");
    assertTrue(bad.get("bytes_per_second").isNull(), bad.toString());
    assertEquals(0, root.get("unauthenticated_records").asLong());

    Out wrong = run("status", "--kafka", kafka.bootstrapServers(), "--output", "yaml");
    assertEquals(2, wrong.exitCode());
    assertTrue(wrong.err().contains("--output") && wrong.err().contains("'yaml' is not one of text, json"), wrong.err());
  }

  @Test
  void aJobWithoutEventsIsSubmitted() {
    String id = kafka.uniqueName("status-new");
    publish(Topics.JOBS, id, spec(id, JobState.JOB_STATE_SUBMITTED).toByteArray());
    at(T0 + 1000);

    Out run = status(id);

    assertEquals(0, run.exitCode(), run.err());
    assertTrue(run.out().startsWith(id + "  SUBMITTED  no progress yet"), run.out());
  }

  @Test
  void unknownJobIsBadInput() {
    Out status = status("no-such-job-" + System.nanoTime());
    assertEquals(2, status.exitCode());
    assertTrue(status.err().contains("zcow: no job no-such-job-"), status.err());
    Out cancel = run("cancel", "--kafka", kafka.bootstrapServers(), "no-such-job");
    assertEquals(2, cancel.exitCode());
    assertTrue(cancel.err().contains("zcow: no job no-such-job"), cancel.err());
  }

  @Test
  void cancelRepublishesTheSpecAsCancelled() {
    String id = kafka.uniqueName("cancel-run");
    JobSpec submitted = spec(id, JobState.JOB_STATE_SUBMITTED);
    publish(Topics.JOBS, id, submitted.toByteArray());
    publish(Topics.JOBS, id, byWriter(id, JobState.JOB_STATE_RUNNING, 3).toByteArray());

    Out run = run("cancel", "--kafka", kafka.bootstrapServers(), id);

    assertEquals(0, run.exitCode(), run.err());
    assertTrue(run.out().contains("job " + id + " cancelled (was RUNNING)"), run.out());
    JobSpec latest = JobLog.read(KafkaSettings.of(kafka.bootstrapServers())).job(id).orElseThrow().spec();
    assertEquals(submitted.toBuilder().setState(JobState.JOB_STATE_CANCELLED).setReason(CancelCommand.CANCELLED_REASON)
        .build(), latest, "the same spec, created_at_ms included, with state CANCELLED under epoch 0 (the user's word)");
    at(T0 + 60 * 60_000);
    assertTrue(status(id).out().startsWith(id + "  CANCELLED"), "not stalled: cancelled");
    Out again = run("cancel", "--kafka", kafka.bootstrapServers(), id);
    assertEquals(0, again.exitCode(), again.err());
    assertTrue(again.out().contains("cancelled already"), again.out());
  }

  @Test
  void cancelRefusesAJobThatIsDone() {
    String id = kafka.uniqueName("cancel-done");
    publish(Topics.JOBS, id, spec(id, JobState.JOB_STATE_SUBMITTED).toByteArray());
    publish(Topics.JOBS, id, byWriter(id, JobState.JOB_STATE_DONE, 1).toByteArray());

    Out run = run("cancel", "--kafka", kafka.bootstrapServers(), id);

    assertEquals(2, run.exitCode());
    assertTrue(run.err().contains("is done already"), run.err());
  }

  @Test
  void cancelMakesARunningWriterRemoveThePart(@TempDir Path root) throws Exception {
    String group = kafka.uniqueName("cancel-group");
    TopicSetup.ensure(KafkaSettings.of(kafka.bootstrapServers()), TopicSetup.Plan.defaults(group));
    String id = kafka.uniqueName("cancel-live");
    Path part = ImageWriter.partPath(root.resolve(id + ".qcow2"));
    WriterConfig config = WriterConfig.builder(kafka.bootstrapServers(), EmbeddedZooKeeper.shared().connectString(), root)
        .group(group).zkRoot(EmbeddedZooKeeper.shared().uniquePath("cancel")).build();
    try (Writer writer = new Writer(config, Clock.systemUTC()).start()) {
      publish(Topics.JOBS, id, spec(id, JobState.JOB_STATE_SUBMITTED).toBuilder().setWriterGroup(group)
          .setCreatedAtMs(System.currentTimeMillis()).build().toByteArray());
      await(() -> Files.exists(part), "the writer creates " + part);

      Out run = run("cancel", "--kafka", kafka.bootstrapServers(), id);

      assertEquals(0, run.exitCode(), run.err());
      await(() -> !Files.exists(part), "the writer removes " + part);
      // Until the writer publishes its lifecycle on zcow.jobs, this is the cancel's own spec.
      assertTrue(status(id).out().startsWith(id + "  CANCELLED"), "status shows the job CANCELLED");
    }
  }

  private static void await(java.util.function.BooleanSupplier condition, String what) throws InterruptedException {
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting: " + what);
      }
      Thread.sleep(100);
    }
  }

  static JobSpec spec(String id, JobState state) {
    return JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(id).setSourceUri("file:///dev/null")
        .setSourceSize(10 << 20).setVirtualSize(10 << 20).setClusterSize(65536).setRangeSize(1 << 20)
        .setCodec(WireCodec.WIRE_CODEC_ZSTD).setLevel(3).setTargetPath(id + ".qcow2").setWriterGroup("status-test")
        .setCreatedAtMs(T0).setState(state).build();
  }

  /** The spec as the leading writer republishes it: its lifecycle state under its leader epoch. */
  static JobSpec byWriter(String id, JobState state, long epoch) {
    return spec(id, state).toBuilder().setWriterEpoch(epoch).build();
  }

  private static JobEvent state(String id, JobState s, long timeMs) {
    return JobEvent.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(id).setKind(EventKind.EVENT_KIND_STATE)
        .setState(s).setRangeIndex(-1).setTimeMs(timeMs).build();
  }

  private static JobEvent progress(String id, long total, long done, long timeMs) {
    return JobEvent.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(id)
        .setKind(EventKind.EVENT_KIND_PROGRESS).setRangeIndex(-1).setTimeMs(timeMs)
        .setProgress(Progress.newBuilder().setRangesTotal(total).setRangesDone(done).setGuestBytesDone(done << 20)
            .setHostBytes(done << 19))
        .build();
  }

  private void publish(String topic, String key, byte[] value) {
    try (KafkaProducer<String, byte[]> p = new KafkaProducer<>(kafka.producerProps())) {
      p.send(new ProducerRecord<>(topic, key, value)).get();
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  /** The clock status reads: events age against it. */
  private Clock clock = Clock.systemUTC();

  private void at(long ms) {
    clock = Clock.fixed(Instant.ofEpochMilli(ms), ZoneOffset.UTC);
  }

  private static String lineOf(String out, String id) {
    return out.lines().filter(l -> l.startsWith(id + "  ")).findFirst().orElseThrow(() -> new AssertionError(out));
  }

  private Out status(String id) {
    return id == null ? run(clock, "status", "--kafka", kafka.bootstrapServers())
        : run(clock, "status", "--kafka", kafka.bootstrapServers(), id);
  }

  record Out(int exitCode, String out, String err) {}

  /** Like {@link CliRun}, with stdout captured too (status and cancel print their answer there). */
  static Out run(String... args) {
    return run(Clock.systemUTC(), args);
  }

  static synchronized Out run(Clock clock, String... args) {
    ByteArrayOutputStream outBytes = new ByteArrayOutputStream();
    PrintStream oldOut = System.out;
    System.setOut(new PrintStream(outBytes, true, StandardCharsets.UTF_8));
    try {
      // The fixtures produce unsigned records: without a key, status and cancel read them --insecure.
      String[] insecure = List.of(args).contains("--auth-key-file") ? args
          : java.util.stream.Stream.concat(java.util.stream.Stream.of(args[0], "--insecure"),
              java.util.Arrays.stream(args).skip(1)).toArray(String[]::new);
      CliRun r = CliRun.of(Environment.system().withClock(clock), insecure);
      return new Out(r.exitCode(), outBytes.toString(StandardCharsets.UTF_8), r.err());
    } finally {
      System.setOut(oldOut);
    }
  }
}
