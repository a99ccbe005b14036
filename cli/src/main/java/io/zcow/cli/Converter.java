package io.zcow.cli;

import io.zcow.qcow2.ClusterKind;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.qcow2.ImageOptions;
import io.zcow.qcow2.IncrementalPlan;
import io.zcow.qcow2.ImageStats;
import io.zcow.qcow2.ImageWriter;
import io.zcow.qcow2.Manifest;
import io.zcow.qcow2.ManifestReader;
import io.zcow.worker.ClusterSink;
import io.zcow.worker.PreviousDigests;
import io.zcow.worker.RangeCompressor;
import io.zcow.source.DirtyClusters;
import io.zcow.source.Source;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * {@code zcow convert}: the compress path and the image writer in one process, without Kafka. The
 * single-host baseline, and the image library's own end-to-end driver.
 *
 * <p>Threads take work units (a few MiB of guest clusters, in order) from a shared counter, compress
 * them with their own {@link RangeCompressor}, and hand every cluster straight to the {@link
 * ImageWriter}, which packs them through the cluster-fill cache, with each cluster's SHA-256 for
 * the image's digest manifest. A failure stops every thread and removes {@code TARGET.part} (and
 * the manifest's part); nothing appears at TARGET unless the image is complete.
 */
public final class Converter {
  /** Work handed to a thread at a time: small enough to spread a small disk over all threads. */
  static final long UNIT_BYTES = 32L << 20;

  private final Source source;
  private final Path target;
  private final ImageOptions options;
  private final int threads;
  private final int level;
  private final AtomicLong guestBytesDone = new AtomicLong();
  private final AtomicLong unchangedBytes = new AtomicLong(); // of guestBytesDone, left to the backing file
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  private volatile boolean cancelled;
  private volatile ImageWriter writer;
  private IncrementalPlan plan; // null: a full image or a digest incremental
  private ManifestReader previousDigests; // a digest incremental: the backing file's manifest
  private final AtomicLong changedClusters = new AtomicLong(); // digest incrementals: stored
  private final AtomicLong unchangedClusters = new AtomicLong(); // digest incrementals: left to the backing file
  private final java.util.concurrent.CountDownLatch stopped = new java.util.concurrent.CountDownLatch(1);

  public Converter(Source source, Path target, ImageOptions options, int threads, int level) {
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be at least 1: " + threads);
    }
    this.source = source;
    this.target = target;
    this.options = options;
    this.threads = threads;
    this.level = level;
  }

  /**
   * Makes the image an overlay holding only the clusters {@code changed} marks (and those beyond
   * the backing file's end): the options must name the backing file. A null {@code changed}
   * keeps the full conversion. Call before {@link #run()}.
   */
  public Converter onlyChanged(DirtyClusters changed) {
    if (changed != null && options.backing() == null) {
      throw new IllegalArgumentException("an incremental conversion needs options with a backing file");
    }
    this.plan = changed == null ? null : new IncrementalPlan(changed, options.backing(), options.geometry());
    return this;
  }

  /**
   * Makes the image an overlay holding only the clusters whose digest differs from {@code
   * previous} (the backing file's manifest, checked against it): every cluster is read and
   * digested, only changed ones are compressed. The options must name the backing file. Call
   * before {@link #run()}; the caller closes {@code previous}.
   */
  public Converter byDigest(ManifestReader previous) {
    if (options.backing() == null) {
      throw new IllegalArgumentException("a digest incremental needs options with a backing file");
    }
    this.previousDigests = previous;
    return this;
  }

  /** Digest incrementals: clusters read and found changed (stored) so far. */
  public long changedClusters() {
    return changedClusters.get();
  }

  /** Digest incrementals: clusters read and found unchanged (left to the backing file) so far. */
  public long unchangedClusters() {
    return unchangedClusters.get();
  }

  /** Incremental conversions: bytes of the clusters the overlay stores (0 for a full one). */
  public long changedBytesTotal() {
    if (plan == null) {
      return 0;
    }
    ImageGeometry g = options.geometry();
    return Math.min(plan.changedCount(0, g.guestClusters()) * g.clusterSize(), g.virtualSize());
  }

  /** Incremental conversions: of those, bytes compressed and accepted so far. */
  public long changedBytesDone() {
    return Math.max(0, Math.min(guestBytesDone.get() - unchangedBytes.get(), changedBytesTotal()));
  }

  /** Guest bytes compressed and accepted so far. */
  public long guestBytesDone() {
    return Math.min(guestBytesDone.get(), options.geometry().virtualSize());
  }

  /** Host bytes of the image so far. */
  public long hostBytes() {
    ImageWriter w = writer;
    return w == null ? 0 : w.stats().hostBytes();
  }

  /** Asks a running conversion to stop; {@link #run()} then removes the partial image and throws. */
  public void cancel() {
    cancelled = true;
  }

  /**
   * Cancels and waits (bounded) until {@link #run()} has cleaned up: for a shutdown hook, which
   * must not let the JVM exit while TARGET.part is still being removed.
   */
  public void cancelAndWait(long millis) {
    cancel();
    try {
      stopped.await(millis, java.util.concurrent.TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Converts the whole source; returns the final statistics.
   *
   * @throws io.zcow.ZcowException or another runtime exception when the conversion failed or was
   *     cancelled (then nothing is left at TARGET or TARGET.part)
   */
  public ImageStats run() {
    try {
      return runOnce();
    } finally {
      stopped.countDown();
    }
  }

  private ImageStats runOnce() {
    ImageWriter w = ImageWriter.create(target, options);
    writer = w;
    boolean done = false;
    try {
      int cs = options.geometry().clusterSize();
      long unit = Math.max(1, UNIT_BYTES / cs);
      long clusters = options.geometry().guestClusters();
      AtomicLong next = new AtomicLong();
      List<Thread> workers = new ArrayList<>();
      for (int i = 0; i < threads; i++) {
        Thread t = new Thread(() -> work(w, next, unit, clusters), "zcow-convert-" + i);
        t.start();
        workers.add(t);
      }
      for (Thread t : workers) {
        joinUninterruptibly(t);
      }
      Throwable f = failure.get();
      if (f != null) {
        throw f instanceof RuntimeException re ? re : new RuntimeException(f);
      }
      if (cancelled) {
        throw new io.zcow.ZcowException("cancelled");
      }
      w.finish();
      done = true;
      return w.stats();
    } finally {
      if (!done) {
        w.abort();
      }
    }
  }

  private void work(ImageWriter w, AtomicLong next, long unit, long clusters) {
    int cs = options.geometry().clusterSize();
    boolean byDigest = previousDigests != null;
    try (RangeCompressor rc = new RangeCompressor(source, options.geometry(), level).withDigests()) {
      ClusterSink sink = new ClusterSink() {
        @Override
        public void cluster(long guestCluster, ClusterKind kind, ByteBuffer payload) {
          cluster(guestCluster, kind, payload, null);
        }

        @Override
        public void cluster(long guestCluster, ClusterKind kind, ByteBuffer payload, byte[] digest) {
          w.put(guestCluster, kind, payload, digest);
          guestBytesDone.addAndGet(cs);
          if (byDigest) {
            changedClusters.incrementAndGet();
          }
        }

        @Override
        public void zeros(long firstGuestCluster, long count) {
          w.putZeros(firstGuestCluster, count);
          guestBytesDone.addAndGet(count * cs);
          if (byDigest) {
            changedClusters.addAndGet(count);
          }
        }

        @Override
        public void unchanged(long firstGuestCluster, long count) {
          w.putUnchanged(firstGuestCluster, count);
          guestBytesDone.addAndGet(count * cs);
          unchangedBytes.addAndGet(count * cs);
          unchangedClusters.addAndGet(count);
        }
      };
      PreviousDigests filter = new PreviousDigests();
      byte[] entries = byDigest ? new byte[(int) unit * Manifest.DIGEST_BYTES] : null;
      while (!cancelled && failure.get() == null) {
        long first = next.getAndAdd(unit);
        if (first >= clusters) {
          return;
        }
        long count = Math.min(unit, clusters - first);
        if (byDigest) {
          previousDigests.read(first, (int) count, entries);
          rc.compress(first, count, sink, filter.span(first, (int) count, entries));
        } else if (plan == null) {
          rc.compress(first, count, sink);
        } else {
          compressChanged(w, rc, sink, first, count);
        }
      }
    } catch (Throwable t) {
      failure.compareAndSet(null, t);
    }
  }

  /** Reads and writes the changed runs of [first, first + count); the others are left to the backing file. */
  private void compressChanged(ImageWriter w, RangeCompressor rc, ClusterSink sink, long first, long count) {
    long end = first + count;
    for (long pos = first; pos < end && !cancelled; ) {
      long changedAt = Math.min(plan.nextChanged(pos), end);
      if (changedAt > pos) {
        w.putUnchanged(pos, changedAt - pos);
        guestBytesDone.addAndGet((changedAt - pos) * options.geometry().clusterSize());
        unchangedBytes.addAndGet((changedAt - pos) * options.geometry().clusterSize());
      }
      if (changedAt == end) {
        return;
      }
      long cleanAt = Math.min(plan.nextUnchanged(changedAt), end);
      rc.compress(changedAt, cleanAt - changedAt, sink);
      pos = cleanAt;
    }
  }

  private static void joinUninterruptibly(Thread t) {
    boolean interrupted = false;
    while (true) {
      try {
        t.join();
        break;
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
