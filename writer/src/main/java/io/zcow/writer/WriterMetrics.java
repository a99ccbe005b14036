package io.zcow.writer;

import com.sun.net.httpserver.HttpServer;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The writer's metrics (Micrometer), served as Prometheus text on {@code /metrics} when a port is
 * given. Thread safe.
 *
 * <p>{@value #RANGES_PENDING} is what worker autoscaling reads (deploy/k8s): the ranges of the
 * leader's open jobs that are not complete yet, submitted or not. A standby, and a writer between
 * terms, reports 0, so the sum over a group's writers is the group's backlog.
 */
public final class WriterMetrics implements Closeable {
  /** The pending-ranges gauge, by its Prometheus name. */
  public static final String RANGES_PENDING = "zcow_writer_ranges_pending";

  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final Counter bytesIn;
  private final Counter writes;
  private final Counter duplicates;
  private final Counter rejects;
  private final Counter requeues;
  private final Counter skippedQueued;
  private final Counter unauthenticatedMissing;
  private final Counter unauthenticatedBad;
  private final Timer checkpoints;
  private final AtomicLong openJobs = new AtomicLong();
  private final AtomicLong hostBytes = new AtomicLong();
  private final AtomicLong rangesDone = new AtomicLong();
  private final AtomicLong rangesPending = new AtomicLong();
  private HttpServer server;

  public WriterMetrics(String group) {
    bytesIn = Counter.builder("zcow_writer_chunk_bytes_in").tag("group", group).register(registry);
    writes = Counter.builder("zcow_writer_clusters_written").tag("group", group).register(registry);
    duplicates = Counter.builder("zcow_writer_duplicate_clusters").tag("group", group).register(registry);
    rejects = Counter.builder("zcow_writer_rejected_records").tag("group", group).register(registry);
    requeues = Counter.builder("zcow_writer_requeued_ranges").tag("group", group).register(registry);
    skippedQueued = Counter.builder("zcow_writer_queued_job_records_skipped").tag("group", group).register(registry);
    unauthenticatedMissing = Counter.builder("zcow_writer_unauthenticated_records").tag("group", group)
        .tag("reason", "missing").register(registry);
    unauthenticatedBad = Counter.builder("zcow_writer_unauthenticated_records").tag("group", group)
        .tag("reason", "bad").register(registry);
    checkpoints = Timer.builder("zcow_writer_checkpoint").tag("group", group).register(registry);
    registry.gauge("zcow_writer_open_jobs", List.of(io.micrometer.core.instrument.Tag.of("group", group)), openJobs);
    registry.gauge("zcow_writer_host_bytes", List.of(io.micrometer.core.instrument.Tag.of("group", group)), hostBytes);
    registry.gauge("zcow_writer_ranges_done", List.of(io.micrometer.core.instrument.Tag.of("group", group)), rangesDone);
    registry.gauge(RANGES_PENDING, List.of(io.micrometer.core.instrument.Tag.of("group", group)), rangesPending);
  }

  /** Serves {@code /metrics} on {@code port} (0 = none). */
  public WriterMetrics serve(int port) {
    if (port == 0) {
      return this;
    }
    try {
      server = HttpServer.create(new InetSocketAddress(port), 0);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot serve metrics on port " + port + ": " + e.getMessage(), e);
    }
    server.createContext("/metrics", exchange -> {
      byte[] body = registry.scrape().getBytes(StandardCharsets.UTF_8);
      exchange.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      exchange.sendResponseHeaders(200, body.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(body);
      }
    });
    server.start();
    return this;
  }

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

  void checkpoint(long nanos) {
    checkpoints.record(nanos, TimeUnit.NANOSECONDS);
  }

  void gauges(List<JobRun> open) {
    openJobs.set(open.size());
    long host = 0;
    long done = 0;
    long pending = 0;
    for (JobRun r : open) {
      var s = r.image.stats();
      host += s.hostBytes();
      done += s.rangesComplete();
      pending += Math.max(0, r.layout.ranges() - s.rangesComplete());
    }
    hostBytes.set(host);
    rangesDone.set(done);
    rangesPending.set(pending);
  }

  @Override
  public void close() {
    if (server != null) {
      server.stop(0);
    }
    registry.close();
  }
}
