package io.zcow.worker.kafka;

import io.zcow.BadInputException;
import io.zcow.RetriableException;
import io.zcow.proto.ClusterRun;
import io.zcow.proto.JobSpec;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.worker.PreviousDigests;
import io.zcow.worker.RangeCompressor;
import io.zcow.worker.RangeStats;
import io.zcow.source.ReadRateLimiter;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import io.zcow.source.SourceLocation;
import io.zcow.source.Sources;
import io.zcow.source.ThrottledSource;
import io.zcow.source.nbd.NbdOptions;
import java.io.Closeable;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.producer.Producer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs the ranges of one task loop on a thread of its own, so the loop stays free to renew the
 * task's acquisition lock and to notice a stop while a slow range is read.
 *
 * <p>The thread keeps the source and compressor of the last job open for the next range of the
 * same job (a compressor owns a zstd context and a 4 MiB direct buffer). A range is stopped by its
 * cancel flag, checked at every cluster, never by interrupting the thread: an interrupt closes
 * the source's FileChannel for every thread reading it.
 */
final class RangeRunner implements RangeExecutor, Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(RangeRunner.class);

  private final ExecutorService executor;
  private final Producer<String, byte[]> producer;
  private final RecordAuth auth;
  private final SourceCache sourceCache;
  private final NbdOptions nbd;
  private final ReadRateLimiter limiter; // null: no limit
  private final String origin;
  private final Duration sendTimeout;
  private Opened opened; // owned by the range thread

  /**
   * What to compress, and where the chunks go.
   *
   * @param changed incremental jobs: the only clusters of the range to read (checked: ascending,
   *     inside the range); empty: the whole range
   * @param taskAttempt the task's attempt number, as the writer issued it
   * @param attemptId this worker's attempt at it, unique, on every chunk record
   */
  record Work(JobSpec spec, long range, SourceLocation source, ImageGeometry geometry, long firstCluster, long clusterCount,
      List<ClusterRun> changed, byte[] previousDigests, String chunksTopic, int taskAttempt, String attemptId,
      AtomicBoolean cancelled) {
    String jobId() {
      return spec.getJobId();
    }
  }

  /** How a range ended. */
  sealed interface Outcome {
    /** Every record of the range is acknowledged by the broker. */
    record Done(RangeStats stats, long nanos) implements Outcome {}

    /**
     * This worker could not do it; another may.
     *
     * @param readFailed whether reading the source failed (a read error, an NBD server gone): a
     *     failed attempt of the range, which the writer issues again and counts; false when the
     *     chunks could not be sent (the broker's doing, not the range's): the task goes back to
     *     the share group
     */
    record Release(String reason, boolean readFailed) implements Outcome {}

    /** Stopped by its cancel flag: the task is no longer this worker's to finish. */
    record Cancelled() implements Outcome {}
  }

  /**
   * The source and compressor of one submission of one job, never another's: a source keeps what
   * it learnt of the export (an NBD source its last block-status reply), and the same URI may name
   * another export by the next job (qemu-nbd restarted on the same socket after the guest wrote),
   * whose new data would read as the old holes.
   */
  private record Opened(String jobId, long createdAtMs, SourceLocation location, long size, int clusterSize, int level,
      Source source, RangeCompressor compressor) {
    boolean fits(Work w) {
      return jobId.equals(w.jobId()) && createdAtMs == w.spec().getCreatedAtMs() && location.equals(w.source())
          && size == w.spec().getSourceSize() && clusterSize == w.geometry().clusterSize()
          && level == w.spec().getLevel();
    }

    void close() {
      compressor.close();
      source.close();
    }
  }

  RangeRunner(String threadName, Producer<String, byte[]> producer, RecordAuth auth, SourceCache sourceCache,
      NbdOptions nbd, ReadRateLimiter limiter, String origin, Duration sendTimeout) {
    this.executor = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, threadName);
      t.setDaemon(true); // a read stuck in the kernel must not keep a stopped JVM alive
      return t;
    });
    this.producer = producer;
    this.auth = auth;
    this.sourceCache = sourceCache;
    this.nbd = nbd;
    this.limiter = limiter;
    this.origin = origin;
    this.sendTimeout = sendTimeout;
  }

  /** Queues a range; ranges run one after another, in submission order. */
  @Override
  public CompletableFuture<Outcome> submit(Work w) {
    return CompletableFuture.supplyAsync(() -> run(w), executor);
  }

  private Outcome run(Work w) {
    if (w.cancelled().get()) {
      return new Outcome.Cancelled();
    }
    long started = System.nanoTime();
    try {
      Opened o = open(w);
      ChunkSender sender = new ChunkSender(producer, auth, w.chunksTopic(), w.jobId(), w.range(), w.attemptId(),
          w.cancelled()::get);
      sender.start(origin); // once the source is open: a range this host cannot read never starts a clock
      RangeStats stats = compress(o.compressor(), w, sender);
      sender.finish(stats, origin, sendTimeout.toMillis());
      return new Outcome.Done(stats, System.nanoTime() - started);
    } catch (ChunkSender.CancelledException e) {
      return new Outcome.Cancelled();
    } catch (ChunkSender.SendFailedException e) {
      return new Outcome.Release(e.getMessage(), false);
    } catch (BadInputException | RetriableException e) {
      dropOpened();
      return new Outcome.Release(e.getMessage(), true);
    } catch (RuntimeException e) {
      LOG.error("[job={} range={}] unexpected failure", w.jobId(), w.range(), e);
      dropOpened();
      return new Outcome.Release("unexpected failure: " + e, false);
    }
  }

  /**
   * The whole range (by digest: only clusters whose digest differs from the task's previous ones
   * are sent, the others as unchanged runs), or run after run only its changed clusters (the sink
   * sees them ascending). Every cluster sent carries its digest, for the image's manifest.
   */
  private static RangeStats compress(RangeCompressor c, Work w, ChunkSender sender) {
    c.withDigests();
    if (w.previousDigests() != null) {
      return c.compress(w.firstCluster(), w.clusterCount(), sender,
          new PreviousDigests().span(w.firstCluster(), (int) w.clusterCount(), w.previousDigests()));
    }
    if (w.changed().isEmpty()) {
      return c.compress(w.firstCluster(), w.clusterCount(), sender);
    }
    RangeStats sum = new RangeStats(0, 0, 0, 0, 0);
    for (ClusterRun run : w.changed()) {
      RangeStats s = c.compress(run.getFirst(), run.getCount(), sender);
      sum = new RangeStats(sum.zeroClusters() + s.zeroClusters(), sum.rawClusters() + s.rawClusters(),
          sum.compressedClusters() + s.compressedClusters(), sum.bytesRead() + s.bytesRead(),
          sum.payloadBytes() + s.payloadBytes());
    }
    return sum;
  }

  private Opened open(Work w) {
    if (opened != null && opened.fits(w)) {
      return opened;
    }
    dropOpened();
    Source source = Sources.open(w.source(), sourceCache, nbd);
    try {
      if (limiter != null) {
        source = new ThrottledSource(source, limiter);
      }
      if (source.size() != w.spec().getSourceSize()) {
        // Another host's view, or the source changed since the job began: not this worker's to read.
        throw new BadInputException("source " + w.source() + " has " + source.size() + " bytes on this host, the job was"
            + " submitted for " + w.spec().getSourceSize());
      }
      RangeCompressor c = new RangeCompressor(source, w.geometry(), w.spec().getLevel());
      opened = new Opened(w.jobId(), w.spec().getCreatedAtMs(), w.source(), w.spec().getSourceSize(), w.geometry().clusterSize(), w.spec().getLevel(), source, c);
      return opened;
    } catch (RuntimeException e) {
      source.close();
      throw e;
    }
  }

  private void dropOpened() {
    if (opened != null) {
      try {
        opened.close();
      } catch (RuntimeException e) {
        LOG.debug("closing {}: {}", opened.location(), e.toString());
      }
      opened = null;
    }
  }

  /** Lets the range at work finish (within {@code wait}), then closes the cached source. */
  @Override
  public void close(Duration wait) {
    executor.shutdown();
    try {
      if (executor.awaitTermination(wait.toMillis(), TimeUnit.MILLISECONDS)) {
        dropOpened(); // the range thread has ended: its state is ours now
      } else {
        LOG.warn("a range is still running after {} ms; leaving it to end on its own", wait.toMillis());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    close(Duration.ofSeconds(5));
  }
}
