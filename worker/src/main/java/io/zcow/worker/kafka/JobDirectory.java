package io.zcow.worker.kafka;

import io.zcow.RetriableException;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeKey;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.JobBook;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.proto.kafka.ReportLimiter;
import io.zcow.proto.kafka.TopicReader;
import java.io.Closeable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The jobs a worker knows: follows the compacted topic {@link Topics#JOBS} from its beginning
 * for as long as it is open, through a {@link TopicReader} into a {@link JobBook} — so the edge
 * checks every role makes, and the writer-epoch rule (a deposed writer's state never wins), hold
 * here as everywhere.
 *
 * <p>Before calling a job unknown, ask {@link #refreshed}: it answers only once everything
 * published before the call has been read, since a task can arrive before the follower has read
 * its job's spec.
 *
 * <p>Given an events topic, it also follows that from its end, for the writers' progress
 * reports: {@link #workWaiting()} says whether a running job has ranges issued that no worker has
 * started ({@link WaitingRanges}). One thread ("zcow-jobs") owns both readers; lookups are thread
 * safe.
 */
public final class JobDirectory implements JobView, Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(JobDirectory.class);
  private static final Duration IDLE_POLL = Duration.ofMillis(400);
  private static final Duration EVENTS_POLL = Duration.ofMillis(100);
  private static final long EVENTS_ASSIGN_RETRY_MS = 5_000;
  private static final Duration SYNC_POLL = Duration.ofMillis(20);
  private static final Duration METADATA_TIMEOUT = Duration.ofSeconds(5);

  private final TopicReader reader; // owned by thread
  private final TopicReader eventsReader; // owned by thread; null: no events followed
  private final String topic;
  private final JobBook book;
  private final RecordAuth auth;
  private final WaitingRanges waiting = new WaitingRanges();
  private final ReportLimiter unauthenticatedLog = new ReportLimiter(10_000);
  private final LinkedBlockingQueue<CompletableFuture<Void>> syncRequests = new LinkedBlockingQueue<>();
  private final Thread thread;
  private volatile boolean closed;
  // Owned by thread:
  private boolean assigned;
  private final List<PendingSync> pending = new ArrayList<>();
  private long lastMissingTopicLog;
  private boolean eventsAssigned;
  private long eventsAssignAtMs;

  private record PendingSync(CompletableFuture<Void> done, Map<TopicPartition, Long> ends) {}

  /**
   * @param eventsConsumer reads {@code eventsTopic} from its end; null to follow no events
   */
  JobDirectory(Consumer<String, byte[]> consumer, String topic, Consumer<String, byte[]> eventsConsumer,
      String eventsTopic, RecordAuth auth) {
    this.reader = new TopicReader(consumer, topic, METADATA_TIMEOUT);
    this.eventsReader = eventsConsumer == null ? null : new TopicReader(eventsConsumer, eventsTopic, METADATA_TIMEOUT);
    this.topic = topic;
    this.book = new JobBook(auth);
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
    JobDirectory d = new JobDirectory(new KafkaConsumer<>(settings.assignedConsumer(clientId)), topic, null, null,
        settings.auth());
    d.thread.start();
    return d;
  }

  /**
   * As {@link #start(KafkaSettings, String, String)}, and follows {@code eventsTopic} ({@link
   * Topics#EVENTS} in production) from its end for {@link #workWaiting()}.
   */
  public static JobDirectory start(KafkaSettings settings, String clientId, String topic, String eventsTopic) {
    JobDirectory d = new JobDirectory(new KafkaConsumer<>(settings.assignedConsumer(clientId)), topic,
        new KafkaConsumer<>(settings.assignedConsumer(clientId + "/events")), eventsTopic, settings.auth());
    d.thread.start();
    return d;
  }

  /** The latest spec of {@code jobId} read so far (a deposed writer's older-epoch state excluded). */
  @Override
  public Optional<JobSpec> get(String jobId) {
    return book.get(jobId);
  }

  /**
   * Whether a job this directory knows as running has ranges issued that no worker has started,
   * by its writer's progress report of the last {@link WaitingRanges#FRESH_MS}. Always false
   * without an events topic.
   */
  @Override
  public boolean workWaiting() {
    return waiting.any(monotonicMs(), id -> book.get(id).map(s -> s.getState() == JobState.JOB_STATE_RUNNING)
        .orElse(false));
  }

  /**
   * The spec of {@code jobId} after reading the topic up to its end as of this call.
   *
   * @throws RetriableException when the topic cannot be read to its end in {@code timeout}
   */
  @Override
  public Optional<JobSpec> refreshed(String jobId, Duration timeout) {
    awaitCaughtUp(timeout);
    return get(jobId);
  }

  /**
   * Waits until everything published to the jobs topic before this call has been read.
   *
   * @throws RetriableException when that takes longer than {@code timeout}
   */
  @Override
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
        reader.close();
        if (eventsReader != null) {
          eventsReader.close();
        }
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
    // A sync request re-assigns too: the topic may have grown partitions since.
    if (!syncRequests.isEmpty() || !assigned) {
      if (!reader.assign(false)) {
        missingTopic();
        pause(500);
        return;
      }
      assigned = true;
      List<CompletableFuture<Void>> asked = new ArrayList<>();
      syncRequests.drainTo(asked);
      if (!asked.isEmpty()) {
        Map<TopicPartition, Long> ends = reader.ends();
        for (CompletableFuture<Void> f : asked) {
          pending.add(new PendingSync(f, ends));
        }
      }
    }
    reader.poll(pending.isEmpty() ? IDLE_POLL : SYNC_POLL, this::apply);
    for (Iterator<PendingSync> it = pending.iterator(); it.hasNext(); ) {
      PendingSync p = it.next();
      if (p.done().isDone() || reader.reached(p.ends())) {
        p.done().complete(null);
        it.remove();
      }
    }
    followEvents();
  }

  /** Reads the events published since the last look (from the end at the first). */
  private void followEvents() {
    if (eventsReader == null) {
      return;
    }
    long now = monotonicMs();
    if (!eventsAssigned) {
      if (now < eventsAssignAtMs) {
        return;
      }
      eventsAssignAtMs = now + EVENTS_ASSIGN_RETRY_MS;
      if (!eventsReader.assign(true)) {
        return; // the coordinator has not created it yet
      }
      eventsAssigned = true;
    }
    eventsReader.poll(pending.isEmpty() ? EVENTS_POLL : Duration.ZERO, r -> {
      if (auth.verify(r).ok() && Wire.jobEvent(r.value()) instanceof Wire.Decoded.Ok<JobEvent> ok) {
        waiting.apply(ok.value(), monotonicMs());
      }
    });
  }

  private static long monotonicMs() {
    return System.nanoTime() / 1_000_000;
  }

  private void missingTopic() {
    long now = System.currentTimeMillis();
    if (now - lastMissingTopicLog > 30_000) {
      LOG.warn("topic {} does not exist yet: waiting for a coordinator to create it", topic);
      lastMissingTopicLog = now;
    }
  }

  private void apply(ConsumerRecord<String, byte[]> r) {
    JobBook.Applied a = book.apply(r);
    if (a instanceof JobBook.Applied.Ignored i && i.unauthenticated()) {
      long held = unauthenticatedLog.tryReport(System.currentTimeMillis());
      if (held >= 0) {
        LOG.warn("[job={}] {} record at partition {} offset {} ignored: {}{}", RangeKey.claimedJob(r.key()), topic, r.partition(),
            r.offset(), i.reason(), held > 0 ? " (and " + held + " more since the last report)" : "");
      }
    } else if (a instanceof JobBook.Applied.Ignored i) {
      LOG.warn("[job={}] {} record at partition {} offset {} ignored: {}", RangeKey.claimedJob(r.key()), topic, r.partition(), r.offset(),
          i.reason());
    } else if (a instanceof JobBook.Applied.Spec s) {
      LOG.debug("[job={}] {} (writer epoch {})", s.spec().getJobId(), s.spec().getState(), s.spec().getWriterEpoch());
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
    reader.wakeup();
    if (eventsReader != null) {
      eventsReader.wakeup();
    }
    try {
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
