package io.zcow.worker.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.zcow.metrics.MetricsEndpoint;
import io.zcow.proto.ChunkBatch;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeDone;
import io.zcow.proto.RangeTask;
import io.zcow.proto.WireCodec;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Workers on a real broker: tasks in, chunks out (decompressed and compared with the source),
 * and every way a task can go other than well. Each test has topics and a share group of its own.
 */
@ExtendWith(EmbeddedKafkaExtension.class)
class WorkerOnKafkaTest {
  private static final int CLUSTER = 64 << 10;
  private static final long MB = 1_000_000;

  @TempDir Path dir;

  @Test
  void chunksOfEveryTaskDecompressToTheSource(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.mixed(dir.resolve("mixed.img"), (24L << 20) + 333, 7);
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    try (TaskBench bench = new TaskBench(kafka, 2, 2);
        MetricsEndpoint metrics = MetricsEndpoint.serve(0, registry)) {
      JobSpec job = bench.job("job-a", disk, CLUSTER);
      List<RangeTask> tasks = TaskBench.tasks(job);
      bench.publish(job);
      bench.publish(tasks);
      Worker w = bench.start(bench.config("worker@a").threads(2), registry);

      bench.awaitRanges(job, tasks.size());
      bench.assertChunksRebuild(job, tasks, disk);
      assertEquals(tasks.size(), bench.allDones(job.getJobId()).size(), "each range done once");
      assertEquals(tasks.size(), w.metrics().tasksDone());
      long payload = bench.allDones(job.getJobId()).stream().mapToLong(RangeDone::getPayloadBytes).sum();
      assertTrue(payload > 0 && payload < Files.size(disk), "compressed: " + payload);

      String scrape = HttpClient.newHttpClient().send(
          HttpRequest.newBuilder(URI.create("http://localhost:" + metrics.port() + "/metrics")).build(),
          HttpResponse.BodyHandlers.ofString()).body();
      for (String line : List.of("zcow_worker_tasks_total{outcome=\"done\"} " + tasks.size(),
          "zcow_worker_clusters_total{kind=\"zero\"}", "zcow_worker_clusters_total{kind=\"compressed\"}",
          "zcow_worker_read_bytes_total", "zcow_worker_payload_bytes_total", "zcow_worker_thread_read_rate{thread=\"1\"}")) {
        assertTrue(scrape.contains(line), "scrape has " + line + ":\n" + scrape);
      }
    }
  }

  @Test
  void workersAndThreadsBeyondThePartitionCountAllGetWork(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.random(dir.resolve("random.img"), 16L << 20, 3);
    try (TaskBench bench = new TaskBench(kafka, 1, 2)) {
      JobSpec job = bench.job("job-share", disk, CLUSTER, 1L << 20);
      List<RangeTask> tasks = TaskBench.tasks(job);
      bench.publish(job);
      bench.publish(tasks);
      // Slow reads (2 MB/s a worker: about a second a range per thread, 4 s in all) so nobody can
      // take every task before the others have joined.
      Worker a = bench.start(bench.config("worker@a").threads(2).maxReadBytesPerSecond(2 * MB));
      Worker b = bench.start(bench.config("worker@b").threads(2).maxReadBytesPerSecond(2 * MB));

      Set<String> all = Set.of("worker@a/0", "worker@a/1", "worker@b/0", "worker@b/1");
      bench.awaitRanges(job, tasks.size());
      // A consumer that joins the group late can miss the first round: feed more until every
      // thread has had a range (patience, not a sleep, decides).
      for (int round = 1; !threadsThatWorked(bench).containsAll(all) && round <= 5; round++) {
        JobSpec more = bench.job("job-share-" + round, disk, CLUSTER, 1L << 20);
        bench.publish(more);
        bench.publish(TaskBench.tasks(more).subList(0, 8));
        bench.awaitRanges(more, 8);
      }
      assertEquals(all, threadsThatWorked(bench), "every thread of both workers did a range from the one partition");
      bench.assertChunksRebuild(job, tasks, disk);
      assertEquals(tasks.size(), bench.allDones(job.getJobId()).size(), "each range done once");
      assertTrue(a.metrics().tasksDone() > 0 && b.metrics().tasksDone() > 0);
    }
  }

  private static Set<String> threadsThatWorked(TaskBench bench) {
    Set<String> threads = new HashSet<>();
    for (ChunkBatch b : bench.allBatches()) {
      threads.add(b.getAttemptId().substring(0, b.getAttemptId().lastIndexOf('/')));
    }
    return threads;
  }

  @Test
  void rangeOfAWorkerThatDiesIsRedeliveredAndCompletedByAnother(EmbeddedKafka kafka) throws Exception {
    // One range of four 4 MiB reads at 4 MB/s: the first batches come after a second, the end after four.
    Path disk = Disks.random(dir.resolve("random.img"), 16L << 20, 5);
    try (TaskBench bench = new TaskBench(kafka, 1, 1)) {
      JobSpec job = bench.job("job-dies", disk, CLUSTER, 16L << 20);
      List<RangeTask> tasks = TaskBench.tasks(job);
      bench.publish(job);
      bench.publish(tasks);
      Worker slow = bench.start(bench.config("worker@slow").maxReadBytesPerSecond(4 * MB));
      bench.await("a first batch from the slow worker", () -> !bench.batches(job.getJobId(), 0).isEmpty());

      slow.abandon(); // as a crash: nothing acknowledged
      Worker other = bench.start(bench.config("worker@other"));
      bench.awaitRanges(job, 1);

      RangeDone done = bench.dones(job.getJobId()).get(0L);
      assertEquals("worker@other", done.getWorker());
      assertTrue(bench.batches(job.getJobId(), 0).stream().anyMatch(b -> b.getAttemptId().startsWith("worker@slow/")),
          "the dead worker's partial attempt is on the topic too");
      bench.assertChunksRebuild(job, tasks, disk);
      assertEquals(0, slow.metrics().tasksDone());
      assertEquals(1, other.metrics().tasksDone());
    }
  }

  @Test
  void closeReleasesARunningRangeWithinTheGraceForAnotherWorker(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.random(dir.resolve("random.img"), 16L << 20, 6);
    try (TaskBench bench = new TaskBench(kafka, 1, 1)) {
      JobSpec job = bench.job("job-stop", disk, CLUSTER, 16L << 20);
      List<RangeTask> tasks = TaskBench.tasks(job);
      bench.publish(job);
      bench.publish(tasks);
      Worker slow = bench.start(bench.config("worker@slow").maxReadBytesPerSecond(4 * MB)
          .stopGrace(Duration.ofMillis(500)));
      bench.await("a first batch from the slow worker", () -> !bench.batches(job.getJobId(), 0).isEmpty());

      long t0 = System.nanoTime();
      slow.close();
      double secs = (System.nanoTime() - t0) / 1e9;
      assertTrue(secs < 10, "close took " + secs + " s");
      assertEquals(Worker.State.CLOSED, slow.state());
      assertEquals(1, slow.metrics().tasksReleased());

      bench.start(bench.config("worker@other"));
      bench.awaitRanges(job, 1);
      assertEquals("worker@other", bench.dones(job.getJobId()).get(0L).getWorker());
      bench.assertChunksRebuild(job, tasks, disk);
    }
  }

  @Test
  void workerWhoseAllowListExcludesTheSourceReleasesItToAnother(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.mixed(dir.resolve("mixed.img"), 3L << 20, 8);
    Path elsewhere = Files.createDirectory(dir.resolve("elsewhere"));
    try (TaskBench bench = new TaskBench(kafka, 1, 1)) {
      JobSpec job = bench.job("job-allow", disk, CLUSTER);
      List<RangeTask> tasks = TaskBench.tasks(job);
      bench.publish(job);
      bench.publish(tasks);
      Worker refusing = bench.start(bench.config("worker@refusing")
          .sources(SourcePolicy.allowing(List.of(elsewhere)))
          .releaseBackoff(Duration.ofSeconds(5)));
      bench.await("a TASK_RELEASED event", () -> !bench.events(EventKind.EVENT_KIND_TASK_RELEASED).isEmpty());
      JobEvent released = bench.events(EventKind.EVENT_KIND_TASK_RELEASED).get(0);
      assertEquals(job.getJobId(), released.getJobId());
      assertEquals(0, released.getRangeIndex());
      assertEquals("worker@refusing", released.getOrigin());
      assertTrue(released.getReason().contains("worker@refusing") && released.getReason().contains("outside"),
          released.getReason());

      bench.start(bench.config("worker@allowed"));
      bench.awaitRanges(job, 1);
      assertEquals("worker@allowed", bench.dones(job.getJobId()).get(0L).getWorker());
      bench.assertChunksRebuild(job, tasks, disk);
      assertEquals(0, refusing.metrics().tasksDone());
      assertTrue(refusing.metrics().tasksReleased() >= 1);
    }
  }

  @Test
  void badTasksAreRejectedWithAnEventAndDoNotBlockTheQueue(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.mixed(dir.resolve("mixed.img"), 2L << 20, 9);
    try (TaskBench bench = new TaskBench(kafka, 1, 1)) {
      JobSpec good = bench.job("job-good", disk, CLUSTER);
      JobSpec zlib = bench.job("job-zlib", disk, CLUSTER).toBuilder().setCodec(WireCodec.WIRE_CODEC_ZLIB).build();
      bench.publish(good);
      bench.publish(zlib);
      RangeTask valid = TaskBench.tasks(good).get(0);
      bench.publishRaw("job-x/0", new byte[] {(byte) 0xff, (byte) 0xff, 0x7f, 1, 2});
      bench.publish(List.of(valid.toBuilder().setJobId("job-nobody-submitted").build()));
      bench.publish(TaskBench.tasks(zlib));
      bench.publish(List.of(valid.toBuilder().setRangeIndex(1).setOffset(4096).build())); // not on a cluster boundary
      bench.publish(List.of(valid));
      Worker w = bench.start(bench.config("worker@a"));

      bench.awaitRanges(good, 1);
      bench.await("four TASK_REJECTED events", () -> bench.events(EventKind.EVENT_KIND_TASK_REJECTED).size() >= 4);
      List<String> reasons = new ArrayList<>();
      for (JobEvent e : bench.events(EventKind.EVENT_KIND_TASK_REJECTED)) {
        reasons.add(e.getJobId() + ": " + e.getReason());
      }
      assertTrue(reasons.get(0).startsWith("job-x: malformed task"), reasons.toString());
      assertTrue(reasons.get(1).startsWith("job-nobody-submitted: unknown job"), reasons.toString());
      assertTrue(reasons.get(2).startsWith("job-zlib: codec WIRE_CODEC_ZLIB"), reasons.toString());
      assertTrue(reasons.get(3).startsWith("job-good: range at 4096"), reasons.toString());
      assertEquals(4, w.metrics().tasksRejected());
      // The range's RangeDone is on the topic before the loop counts the task done: wait for the count.
      bench.await("the valid task counted done", () -> w.metrics().tasksDone() >= 1);
      assertEquals(1, w.metrics().tasksDone());
      bench.assertChunksRebuild(good, List.of(valid), disk);
    }
  }

  @Test
  void tasksOfACancelledJobAreSkipped(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.mixed(dir.resolve("mixed.img"), 2L << 20, 10);
    try (TaskBench bench = new TaskBench(kafka, 1, 1)) {
      JobSpec cancelled = bench.job("job-cancelled", disk, CLUSTER, 1L << 20);
      runSkipping(bench, disk, cancelled, List.of(cancelled,
          cancelled.toBuilder().setState(JobState.JOB_STATE_CANCELLED).build()));
    }
  }

  @Test
  void workersSkipTasksOfAFailedJob(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.mixed(dir.resolve("mixed.img"), 2L << 20, 12);
    try (TaskBench bench = new TaskBench(kafka, 1, 1)) {
      JobSpec failed = bench.job("job-failed", disk, CLUSTER, 1L << 20);
      // As the writer publishes it now: its lifecycle state under its leader epoch.
      Worker w = runSkipping(bench, disk, failed, List.of(failed.toBuilder().setState(JobState.JOB_STATE_SUBMITTED)
          .build(), failed.toBuilder().setState(JobState.JOB_STATE_FAILED).setWriterEpoch(1)
          .setReason("the target file system is full").build()));
      w.close();

      // Accepted, not released: a worker that comes later is not handed the failed job's tasks again.
      JobSpec later = bench.job("job-later", disk, CLUSTER);
      bench.publish(later);
      bench.publish(TaskBench.tasks(later));
      Worker next = bench.start(bench.config("worker@b"));
      bench.awaitRanges(later, 1);
      assertEquals(0, next.metrics().tasksSkipped());
      assertEquals(List.of(), bench.chunks(failed.getJobId()));
    }
  }

  @Test
  void aDeposedWritersLaterRecordDoesNotReviveAFailedJob(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.mixed(dir.resolve("mixed.img"), 2L << 20, 13);
    try (TaskBench bench = new TaskBench(kafka, 1, 1)) {
      JobSpec failed = bench.job("job-failed", disk, CLUSTER, 1L << 20);
      // The writer of epoch 1 has not yet noticed it lost its term: its RUNNING comes last on the topic.
      runSkipping(bench, disk, failed, List.of(failed.toBuilder().setState(JobState.JOB_STATE_SUBMITTED).build(),
          failed.toBuilder().setState(JobState.JOB_STATE_FAILED).setWriterEpoch(2).build(),
          failed.toBuilder().setState(JobState.JOB_STATE_RUNNING).setWriterEpoch(1).build()));
    }
  }

  /**
   * Publishes {@code job}'s specs in order, then its tasks and a good job's one task, and runs a
   * worker until the good task is done: every task of {@code job} must have been skipped (counted,
   * accepted) with nothing read or compressed for it.
   */
  private static Worker runSkipping(TaskBench bench, Path disk, JobSpec job, List<JobSpec> specs) throws Exception {
    JobSpec good = bench.job("job-good", disk, CLUSTER);
    for (JobSpec s : specs) {
      bench.publish(s);
    }
    bench.publish(good);
    List<RangeTask> tasks = TaskBench.tasks(job);
    bench.publish(tasks);
    bench.publish(TaskBench.tasks(good));
    Worker w = bench.start(bench.config("worker@a"));

    bench.awaitRanges(good, 1);
    assertEquals(tasks.size(), w.metrics().tasksSkipped());
    assertEquals(1, w.metrics().tasksDone());
    assertEquals(List.of(), bench.chunks(job.getJobId()), "nothing read or compressed for " + job.getJobId());
    return w;
  }

  @Test
  void slowRangeKeepsItsTaskByRenewingTheLock(EmbeddedKafka kafka) throws Exception {
    Path disk = Disks.random(dir.resolve("random.img"), 6L << 20, 11); // 4 s + 2 s of reads
    try (TaskBench bench = new TaskBench(kafka, 1, 1)) {
      // A 2 s lock and a range that takes about 6 s: without renewal the second thread would get it.
      kafka.alterGroupConfig(bench.topics.workerGroup(), Map.of("share.record.lock.duration.ms", "2000"));
      JobSpec job = bench.job("job-slow", disk, CLUSTER, 6L << 20);
      List<RangeTask> tasks = TaskBench.tasks(job);
      bench.publish(job);
      bench.publish(tasks);
      Worker w = bench.start(bench.config("worker@a").threads(2).maxReadBytesPerSecond(1 * MB));

      bench.awaitRanges(job, 1);
      Set<String> attempts = new HashSet<>();
      for (ChunkBatch b : bench.batches(job.getJobId(), 0)) {
        attempts.add(b.getAttemptId());
      }
      assertEquals(1, attempts.size(), "one attempt: " + attempts);
      assertTrue(w.metrics().renewals() >= 2, "renewals: " + w.metrics().renewals());
      bench.assertChunksRebuild(job, tasks, disk);
      assertEquals(1, w.metrics().tasksDone());
      bench.await("the acceptance to settle", () -> true);
      assertEquals(1, bench.allDones(job.getJobId()).size(), "done once");
    }
  }
}
