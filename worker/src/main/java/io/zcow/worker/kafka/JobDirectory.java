package io.zcow.worker.kafka;

import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.RetriableException;
import io.zcow.proto.JobSpec;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.proto.kafka.ReportLimiter;
import java.io.Closeable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The jobs a worker knows: follows the compacted topic {@link Topics#JOBS} from its beginning
 * for as long as it is open, keeping the latest JobSpec of each job (a tombstone forgets it).
 *
 * <p>Before calling a job unknown, ask {@link #refreshed}: it answers only once everything
 * published before the call has been read, since a task can arrive before the follower has read
 * its job's spec. One thread ("zcow-jobs") owns the consumer; lookups are thread safe.
 */
public final class JobDirectory implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(JobDirectory.class);
  private static final Duration IDLE_POLL = Duration.ofMillis(500);
  private static final Duration SYNC_POLL = Duration.ofMillis(20);
  private static final Duration METADATA_TIMEOUT = Duration.ofSeconds(5);

  private final Consumer<String, byte[]> consumer; // owned by thread
  private final String topic;
  private final RecordAuth auth;
  private final ReportLimiter unauthenticatedLog = new ReportLimiter(10_000);
  private final Map<String, JobSpec> jobs = new ConcurrentHashMap<>();
  private final LinkedBlockingQueue<CompletableFuture<Void>> syncRequests = new LinkedBlockingQueue<>();
  private final Thread thread;
  private volatile boolean closed;
  // Owned by thread:
  private List<TopicPartition> partitions = List.of();
  private final List<PendingSync> pending = new ArrayList<>();
  private long lastMissingTopicLog;

  private record PendingSync(CompletableFuture<Void> done, Map<TopicPartition, Long> ends) {}

  JobDirectory(Consumer<String, byte[]> consumer, String topic, RecordAuth auth) {
    this.consumer = consumer;
    this.topic = topic;
    this.auth = auth;
    this.thread = new Thread(this::follow, "zcow-jobs");
    this.thread.setDaemon(true);
  }

  /**
   * Starts following {@code topic} ({@link Topics#JOBS} in production); call {@link #refreshed}
   * or {@link #awaitCaughtUp} before relying on it. With a key in {@code settings}, a JobSpec
   * without a valid MAC is ignored (logged, at most every 10 s).
   */
  public static JobDirectory start(KafkaSettings settings, String clientId, String topic) {
    JobDirectory d = new JobDirectory(new KafkaConsumer<>(settings.assignedConsumer(clientId)), topic,
        settings.auth());
    d.thread.start();
    return d;
  }

  /** The latest spec of {@code jobId} read so far. */
  public Optional<JobSpec> get(String jobId) {
    return Optional.ofNullable(jobs.get(jobId));
  }

  /**
   * The spec of {@code jobId} after reading the topic up to its end as of this call.
   *
   * @throws RetriableException when the topic cannot be read to its end in {@code timeout}
   */
  public Optional<JobSpec> refreshed(String jobId, Duration timeout) {
    awaitCaughtUp(timeout);
    return get(jobId);
  }

  /**
   * Waits until everything published to the jobs topic before this call has been read.
   *
   * @throws RetriableException when that takes longer than {@code timeout}
   */
  public void awaitCaughtUp(Duration timeout) {
    if (closed) {
      throw new IllegalStateException("JobDirectory is closed");
    }
    CompletableFuture<Void> done = new CompletableFuture<>();
    syncRequests.add(done);
    try {
      done.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      done.cancel(false);
      throw new RetriableException("could not read " + topic + " to its end within " + timeout.toSeconds()
          + " s (does the topic exist, is the cluster reachable?)", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RetriableException("interrupted while reading " + topic, e);
    } catch (ExecutionException e) {
      throw new RetriableException("reading " + topic + " failed: " + e.getCause(), e.getCause());
    }
  }

  private void follow() {
    try {
      while (!closed) {
        try {
          followOnce();
        } catch (WakeupException e) {
          // close() woke us: the loop condition decides
        } catch (RuntimeException e) {
          LOG.warn("reading {} failed, trying again in 1 s: {}", topic, e.toString());
          pause(1000);
        }
      }
    } finally {
      try {
        consumer.close(Duration.ofSeconds(5));
      } catch (RuntimeException e) {
        LOG.debug("closing the {} consumer: {}", topic, e.toString());
      }
      CompletableFuture<Void> f;
      while ((f = syncRequests.poll()) != null) {
        f.completeExceptionally(new IllegalStateException("JobDirectory closed"));
      }
      for (PendingSync p : pending) {
        p.done().completeExceptionally(new IllegalStateException("JobDirectory closed"));
      }
    }
  }

  private void followOnce() {
    if (!syncRequests.isEmpty() || partitions.isEmpty()) {
      if (!discoverPartitions()) {
        pause(500);
        return;
      }
      List<CompletableFuture<Void>> asked = new ArrayList<>();
      syncRequests.drainTo(asked);
      if (!asked.isEmpty()) {
        Map<TopicPartition, Long> ends = consumer.endOffsets(partitions, METADATA_TIMEOUT);
        for (CompletableFuture<Void> f : asked) {
          pending.add(new PendingSync(f, ends));
        }
      }
    }
    for (ConsumerRecord<String, byte[]> r : consumer.poll(pending.isEmpty() ? IDLE_POLL : SYNC_POLL)) {
      apply(r);
    }
    if (!pending.isEmpty()) {
      Map<TopicPartition, Long> positions = new HashMap<>();
      for (TopicPartition tp : partitions) {
        positions.put(tp, consumer.position(tp, METADATA_TIMEOUT));
      }
      for (Iterator<PendingSync> it = pending.iterator(); it.hasNext(); ) {
        PendingSync p = it.next();
        if (p.done().isDone() || reached(positions, p.ends())) {
          p.done().complete(null);
          it.remove();
        }
      }
    }
  }

  private static boolean reached(Map<TopicPartition, Long> positions, Map<TopicPartition, Long> ends) {
    for (Map.Entry<TopicPartition, Long> e : ends.entrySet()) {
      Long pos = positions.get(e.getKey());
      if (pos == null || pos < e.getValue()) {
        return false;
      }
    }
    return true;
  }

  /** Assigns every partition of the topic (again, when it has grown); false while it does not exist. */
  private boolean discoverPartitions() {
    List<PartitionInfo> infos = consumer.partitionsFor(topic, METADATA_TIMEOUT);
    if (infos == null || infos.isEmpty()) {
      long now = System.currentTimeMillis();
      if (now - lastMissingTopicLog > 30_000) {
        LOG.warn("topic {} does not exist yet: waiting for a coordinator to create it", topic);
        lastMissingTopicLog = now;
      }
      return false;
    }
    if (infos.size() != partitions.size()) {
      List<TopicPartition> all = new ArrayList<>();
      for (PartitionInfo info : infos) {
        all.add(new TopicPartition(topic, info.partition()));
      }
      List<TopicPartition> added = new ArrayList<>(all);
      added.removeAll(partitions);
      consumer.assign(all);
      consumer.seekToBeginning(added);
      partitions = List.copyOf(all);
      LOG.debug("following {} ({} partitions)", topic, all.size());
    }
    return true;
  }

  private void apply(ConsumerRecord<String, byte[]> r) {
    RecordAuth.Verdict verdict = auth.verify(r);
    if (!verdict.ok()) {
      long held = unauthenticatedLog.tryReport(System.currentTimeMillis());
      if (held >= 0) {
        LOG.warn("[job={}] {} record at partition {} offset {} ignored: {}{}", r.key(), topic, r.partition(),
            r.offset(), verdict.reason(), held > 0 ? " (and " + held + " more since the last report)" : "");
      }
      return;
    }
    if (r.value() == null) {
      if (r.key() != null) {
        jobs.remove(r.key());
      }
      return;
    }
    Wire.Decoded<JobSpec> d = Wire.jobSpec(r.value());
    if (d instanceof Wire.Decoded.Ok<JobSpec> ok) {
      JobSpec spec = ok.value();
      if (r.key() != null && !r.key().equals(spec.getJobId())) {
        LOG.warn("[job={}] {} record at partition {} offset {} is keyed {}: ignored", spec.getJobId(), topic,
            r.partition(), r.offset(), r.key());
        return;
      }
      jobs.put(spec.getJobId(), spec);
    } else if (d instanceof Wire.Decoded.Bad<JobSpec> bad) {
      LOG.warn("[job={}] {} record at partition {} offset {} ignored: {}", r.key(), topic, r.partition(),
          r.offset(), bad.reason());
    }
  }

  private static void pause(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    consumer.wakeup();
    try {
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
