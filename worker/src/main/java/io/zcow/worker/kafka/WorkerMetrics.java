package io.zcow.worker.kafka;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.zcow.worker.RangeStats;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What a worker counts, as Micrometer meters (Prometheus names in brackets): bytes read from
 * sources [zcow_worker_read_bytes_total], clusters by kind [zcow_worker_clusters_total{kind}],
 * payload bytes produced [zcow_worker_payload_bytes_total], tasks by outcome
 * [zcow_worker_tasks_total{outcome=done|released|rejected|skipped}], lock renewals
 * [zcow_worker_renewals_total], share consumers replaced because they no longer worked
 * [zcow_worker_consumer_replacements_total{reason=ack_failed|lock_lost|poll_failed|idle}], tasks refused for their MAC when the cluster has a key (also
 * counted as rejected) [zcow_worker_unauthenticated_tasks_total], and per thread the bytes read and the read rate of its last range
 * in MB/s (10^6 bytes) [zcow_worker_thread_read_bytes_total{thread},
 * zcow_worker_thread_read_rate{thread}]. Counted when a range is complete. Thread safe.
 */
public final class WorkerMetrics {
  private final MeterRegistry registry;
  private final Counter readBytes;
  private final Counter zeroClusters;
  private final Counter rawClusters;
  private final Counter compressedClusters;
  private final Counter payloadBytes;
  private final Counter done;
  private final Counter released;
  private final Counter rejected;
  private final Counter skipped;
  private final Counter renewals;
  private final Counter unauthenticated;

  public WorkerMetrics(MeterRegistry registry) {
    this.registry = registry;
    readBytes = Counter.builder("zcow.worker.read.bytes").description("Bytes read from sources (holes are not read)")
        .baseUnit("bytes").register(registry);
    zeroClusters = clusters("zero");
    rawClusters = clusters("raw");
    compressedClusters = clusters("compressed");
    payloadBytes = Counter.builder("zcow.worker.payload.bytes")
        .description("Payload bytes produced to chunks topics (compressed and raw clusters)").baseUnit("bytes")
        .register(registry);
    done = tasks("done");
    released = tasks("released");
    rejected = tasks("rejected");
    skipped = tasks("skipped");
    renewals = Counter.builder("zcow.worker.renewals").description("Acquisition lock renewals of slow ranges")
        .register(registry);
    unauthenticated = Counter.builder("zcow.worker.unauthenticated.tasks")
        .description("Tasks rejected for a missing or bad MAC (--auth-key-file)").register(registry);
    for (ConsumerHealth.Trigger t : ConsumerHealth.Trigger.values()) {
      replacements(t.tag()); // at 0 from the start, so dashboards and alerts see the series
    }
  }

  private Counter replacements(String reason) {
    return Counter.builder("zcow.worker.consumer.replacements")
        .description("Share consumers closed and made anew because they no longer worked, by reason")
        .tag("reason", reason).register(registry);
  }

  private Counter clusters(String kind) {
    return Counter.builder("zcow.worker.clusters").description("Guest clusters of completed ranges, by kind")
        .tag("kind", kind).register(registry);
  }

  private Counter tasks(String outcome) {
    return Counter.builder("zcow.worker.tasks").description("Tasks by outcome").tag("outcome", outcome)
        .register(registry);
  }

  /** Meters of one worker thread. */
  public final class ThreadMeters {
    private final Counter threadBytes;
    private final AtomicLong rateMilliMb = new AtomicLong();

    ThreadMeters(int thread) {
      String t = Integer.toString(thread);
      threadBytes = Counter.builder("zcow.worker.thread.read.bytes").description("Bytes read by one worker thread")
          .baseUnit("bytes").tag("thread", t).register(registry);
      Gauge.builder("zcow.worker.thread.read.rate", rateMilliMb, v -> v.get() / 1000.0)
          .description("MB/s (10^6 bytes) read by one worker thread over its last range").tag("thread", t)
          .register(registry);
    }

    /** A range this thread completed in {@code nanos}. */
    public void rangeDone(RangeStats s, long nanos) {
      readBytes.increment(s.bytesRead());
      threadBytes.increment(s.bytesRead());
      zeroClusters.increment(s.zeroClusters());
      rawClusters.increment(s.rawClusters());
      compressedClusters.increment(s.compressedClusters());
      payloadBytes.increment(s.payloadBytes());
      done.increment();
      rateMilliMb.set(nanos <= 0 ? 0 : Math.round(s.bytesRead() * 1e3 / (nanos / 1e9) / 1e6));
    }
  }

  public ThreadMeters thread(int index) {
    return new ThreadMeters(index);
  }

  void released() {
    released.increment();
  }

  void rejected() {
    rejected.increment();
  }

  void skipped() {
    skipped.increment();
  }

  void renewed() {
    renewals.increment();
  }

  /** A task loop replaced its share consumer; {@code reason} is a {@link ConsumerHealth.Trigger} tag. */
  void consumerReplaced(String reason) {
    replacements(reason).increment();
  }

  /** Share consumers replaced so far, for every reason. */
  public long consumerReplacements() {
    return (long) registry.find("zcow.worker.consumer.replacements").counters().stream()
        .mapToDouble(Counter::count).sum();
  }

  void unauthenticated() {
    unauthenticated.increment();
  }

  public long tasksUnauthenticated() {
    return (long) unauthenticated.count();
  }

  public long tasksDone() {
    return (long) done.count();
  }

  public long tasksReleased() {
    return (long) released.count();
  }

  public long tasksRejected() {
    return (long) rejected.count();
  }

  public long tasksSkipped() {
    return (long) skipped.count();
  }

  public long renewals() {
    return (long) renewals.count();
  }

  public long bytesRead() {
    return (long) readBytes.count();
  }
}
