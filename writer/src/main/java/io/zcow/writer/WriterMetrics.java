package io.zcow.writer;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.zcow.proto.Progress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The writer's meters, in the process's registry (which {@link io.zcow.metrics.MetricsEndpoint}
 * serves), every one tagged with the writer's {@code group}. Thread safe.
 *
 * <p>{@value #RANGES_PENDING} is what worker autoscaling reads (deploy/k8s): the ranges of the
 * leader's open jobs that are not complete yet, submitted or not. A standby, and a writer between
 * terms, reports 0 for it and for every job gauge, so sums over a group's writers are the group's.
 * deploy/monitoring's dashboard and alert rules are built on these names (a test checks they exist).
 */
public final class WriterMetrics {
  /** The pending-ranges gauge, by its Prometheus name. */
  public static final String RANGES_PENDING = "zcow_writer_ranges_pending";

  private final PrometheusMeterRegistry registry;
  private final String group;
  private final Counter bytesIn;
  private final Counter writes;
  private final Counter duplicates;
  private final Counter rejects;
  private final Counter requeues;
  private final Counter skippedQueued;
  private final Counter unauthenticatedMissing;
  private final Counter unauthenticatedBad;
  private final Counter terms;
  private final Counter kafkaGiveUps;
  private final Timer checkpoints;
  private final AtomicLong leader = new AtomicLong();
  private final AtomicLong runningJobs = new AtomicLong();
  private final AtomicLong queuedJobs = new AtomicLong();
  private final AtomicLong hostBytes = new AtomicLong();
  private final AtomicLong rangesDone = new AtomicLong();
  private final AtomicLong rangesPending = new AtomicLong();
  private final AtomicLong chunkLag = new AtomicLong();
  private final MultiGauge jobRangesDone;
  private final MultiGauge jobRanges;
  private final MultiGauge jobGuestBytesDone;

  /**
   * Registers the writer's meters of {@code group}; {@code targetRoot}'s file system is watched for
   * free space at each scrape.
   */
  public WriterMetrics(String group, Path targetRoot, PrometheusMeterRegistry registry) {
    this.registry = registry;
    this.group = group;
    Tags g = Tags.of("group", group);
    bytesIn = Counter.builder("zcow.writer.chunk.bytes.in").tags(g)
        .description("Chunk record bytes read from the chunks topic").register(registry);
    writes = Counter.builder("zcow.writer.clusters.written").tags(g)
        .description("Guest clusters written to images").register(registry);
    duplicates = Counter.builder("zcow.writer.duplicate.clusters").tags(g)
        .description("Clusters that arrived again (a re-issued range) and were dropped").register(registry);
    rejects = Counter.builder("zcow.writer.rejected.records").tags(g)
        .description("Chunk records refused by validation (bad bytes, checksum, indexes)").register(registry);
    requeues = Counter.builder("zcow.writer.requeued.ranges").tags(g)
        .description("Ranges issued again after their timer ran out or a worker released them").register(registry);
    skippedQueued = Counter.builder("zcow.writer.queued.job.records.skipped").tags(g)
        .description("Chunk records of QUEUED jobs skipped").register(registry);
    unauthenticatedMissing = Counter.builder("zcow.writer.unauthenticated.records").tags(g).tag("reason", "missing")
        .description("Records refused for their MAC").register(registry);
    unauthenticatedBad = Counter.builder("zcow.writer.unauthenticated.records").tags(g).tag("reason", "bad")
        .description("Records refused for their MAC").register(registry);
    terms = Counter.builder("zcow.writer.terms").tags(g)
        .description("Terms this writer began as leader (each one after the first is a failover or re-election)")
        .register(registry);
    kafkaGiveUps = Counter.builder("zcow.writer.kafka.unreachable.giveups").tags(g)
        .description("Times this writer gave up leadership because Kafka did not answer for longer than its bound")
        .register(registry);
    checkpoints = Timer.builder("zcow.writer.checkpoint").tags(g).description("Checkpoint rounds").register(registry);
    gauge("zcow.writer.leader", g, leader, "1 while this writer leads its group");
    gauge("zcow.writer.jobs", g.and("state", "running"), runningJobs, "Jobs the leader is writing");
    gauge("zcow.writer.jobs", g.and("state", "queued"), queuedJobs, "Jobs waiting for room in the cache budget");
    gauge("zcow.writer.host.bytes", g, hostBytes, "Bytes of the open jobs' images");
    gauge("zcow.writer.ranges.done", g, rangesDone, "Complete ranges of the open jobs");
    gauge(RANGES_PENDING, g, rangesPending, "Ranges of the open jobs not complete yet");
    gauge("zcow.writer.chunk.lag.records", g, chunkLag,
        "Chunk records on the broker the leader has not read yet");
    Gauge.builder("zcow.writer.target.free.bytes", targetRoot, WriterMetrics::usableBytes).tags(g)
        .description("Free bytes of the target root's file system (NaN when it cannot be read)").baseUnit("bytes")
        .register(registry);
    jobRangesDone = MultiGauge.builder("zcow.writer.job.ranges.done").description("Complete ranges of a job")
        .register(registry);
    jobRanges = MultiGauge.builder("zcow.writer.job.ranges").description("Ranges of a job").register(registry);
    jobGuestBytesDone = MultiGauge.builder("zcow.writer.job.guest.bytes.done")
        .description("Guest bytes of a job's complete clusters").register(registry);
  }

  private void gauge(String name, Tags tags, AtomicLong value, String description) {
    Gauge.builder(name, value, AtomicLong::get).tags(tags).description(description).register(registry);
  }

  private static double usableBytes(Path root) {
    try {
      return Files.getFileStore(root).getUsableSpace();
    } catch (IOException | RuntimeException e) {
      return Double.NaN;
    }
  }

  /** The Prometheus text of the whole registry (tests read it). */
  public String scrape() {
    return registry.scrape();
  }

  void bytesIn(long n) {
    bytesIn.increment(n);
  }

  void write() {
    writes.increment();
  }

  void duplicates(long n) {
    if (n > 0) {
      duplicates.increment(n);
    }
  }

  void reject() {
    rejects.increment();
  }

  void skippedQueued() {
    skippedQueued.increment();
  }

  /** Chunk records of QUEUED jobs skipped (none when jobs are queued before any task of theirs). */
  public long skippedQueuedRecords() {
    return (long) skippedQueued.count();
  }

  void requeue() {
    requeues.increment();
  }

  /** A record refused for its MAC (any topic the writer reads): {@code missing} or {@code bad}. */
  void unauthenticated(boolean missing) {
    (missing ? unauthenticatedMissing : unauthenticatedBad).increment();
  }

  /** Records refused for a missing or bad MAC so far. */
  public long unauthenticatedRecords() {
    return (long) (unauthenticatedMissing.count() + unauthenticatedBad.count());
  }

  /** Records refused by validation (bad bytes, CRC, indexes...) so far; unauthenticated ones not included. */
  public long rejectedRecords() {
    return (long) rejects.count();
  }

  void gaveUpLeadership() {
    kafkaGiveUps.increment();
  }

  /** Times this writer gave up leadership because Kafka was out of reach. */
  public long kafkaGiveUps() {
    return (long) kafkaGiveUps.count();
  }

  void checkpoint(long nanos) {
    checkpoints.record(nanos, TimeUnit.NANOSECONDS);
  }

  /** This writer began a term as leader ({@code true}) or left it: a standby has no jobs. */
  void leading(boolean now) {
    leader.set(now ? 1 : 0);
    if (now) {
      terms.increment();
    } else {
      gauges(List.of(), 0, 0);
    }
  }

  /**
   * The leader's view after a turn: its open jobs, how many wait QUEUED, and the chunk records on
   * the broker it has not read yet.
   */
  void gauges(List<JobRun> open, int queued, long lag) {
    runningJobs.set(open.size());
    queuedJobs.set(queued);
    chunkLag.set(lag);
    long host = 0;
    long done = 0;
    long pending = 0;
    List<MultiGauge.Row<?>> doneRows = new ArrayList<>();
    List<MultiGauge.Row<?>> totalRows = new ArrayList<>();
    List<MultiGauge.Row<?>> bytesRows = new ArrayList<>();
    for (JobRun r : open) {
      Progress p = r.progress();
      host += p.getHostBytes();
      done += p.getRangesDone();
      pending += Math.max(0, p.getRangesTotal() - p.getRangesDone());
      Tags t = Tags.of("group", group, "job_id", r.id);
      doneRows.add(MultiGauge.Row.of(t, p.getRangesDone()));
      totalRows.add(MultiGauge.Row.of(t, p.getRangesTotal()));
      bytesRows.add(MultiGauge.Row.of(t, p.getGuestBytesDone()));
    }
    hostBytes.set(host);
    rangesDone.set(done);
    rangesPending.set(pending);
    jobRangesDone.register(doneRows, true);
    jobRanges.register(totalRows, true);
    jobGuestBytesDone.register(bytesRows, true);
  }
}
