package io.zcow.cli.faults;

import static org.junit.jupiter.api.Assertions.fail;

import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeDone;
import io.zcow.proto.RangeStarted;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Follows {@code zcow.events} from its beginning in a thread of the test JVM (an assigned
 * consumer, no group; it rides out broker restarts) and keeps every event, so a scenario can wait
 * for "the job made progress after the fault" and measure the time to recover. It also follows the
 * writer group's chunks topic for the workers' attempts: a RangeStarted opens an {@link Attempt},
 * the RangeDone of the same attempt id closes it, so "an attempt started and not done" is a task a
 * worker holds (or held when it died). Chunk records are read before the writer trims them; one it
 * trimmed first is missed, which only makes an attempt look open longer.
 *
 * <p>An event's time is the sender's clock ({@code time_ms}; every role runs on this host).
 * Progress means RANGE_DONE or the job's terminal STATE. Thread safe.
 */
public final class JobEvents implements AutoCloseable {
  /** One event, decoded. */
  public record Event(String jobId, EventKind kind, JobState state, long range, Instant time, String reason,
      String origin) {}

  /**
   * A worker's attempt at a range, from the chunks topic: {@code attemptId} (the worker logs it
   * when it starts the range), {@code worker} (its origin), when it started (this JVM's clock, on
   * arrival) and whether its RangeDone has been seen.
   */
  public record Attempt(String jobId, long range, String attemptId, String worker, Instant seen, boolean done) {}

  private final List<Event> events = new CopyOnWriteArrayList<>();
  private final Map<String, Attempt> attempts = new ConcurrentHashMap<>();
  private final Map<String, java.util.concurrent.atomic.AtomicLong> batches = new ConcurrentHashMap<>();
  private final Thread thread;
  private final String bootstrap;
  private final String chunks;
  private volatile boolean closed;

  JobEvents(String bootstrap, String chunksTopic) {
    this.bootstrap = bootstrap;
    this.chunks = chunksTopic;
    this.thread = new Thread(this::follow, "fault-suite-events");
    thread.setDaemon(true);
    thread.start();
  }

  private void follow() {
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(Map.of(
        ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
        ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName(),
        ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName(),
        ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false",
        ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
        ConsumerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "1000"))) {
      Set<String> assigned = new HashSet<>();
      long nextLook = 0;
      while (!closed) {
        try {
          if (assigned.size() < 2 && System.nanoTime() - nextLook >= 0) {
            // The chunks topic appears with the first job: look for it until it is there.
            nextLook = System.nanoTime() + 1_000_000_000L;
            List<TopicPartition> tps = new ArrayList<>(consumer.assignment());
            List<TopicPartition> added = new ArrayList<>();
            for (String topic : List.of(Topics.EVENTS, chunks)) {
              List<PartitionInfo> parts = assigned.contains(topic) ? null : consumer.partitionsFor(topic, Duration.ofSeconds(5));
              if (parts != null && !parts.isEmpty()) {
                parts.forEach(p -> added.add(new TopicPartition(p.topic(), p.partition())));
                assigned.add(topic);
              }
            }
            if (!added.isEmpty()) {
              tps.addAll(added);
              consumer.assign(tps);
              consumer.seekToBeginning(added);
            }
            if (assigned.isEmpty()) {
              Thread.sleep(500);
              continue;
            }
          }
          for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
            if (r.topic().equals(chunks)) {
              chunkRecord(r.value());
            } else if (Wire.jobEvent(r.value()) instanceof Wire.Decoded.Ok<JobEvent> ok) {
              JobEvent e = ok.value();
              events.add(new Event(e.getJobId(), e.getKind(), e.getState(), e.getRangeIndex(),
                  Instant.ofEpochMilli(e.getTimeMs()), e.getReason(), e.getOrigin()));
            }
          }
        } catch (InterruptedException e) {
          return;
        } catch (RuntimeException e) {
          // The broker is restarting, or the topic is not there yet: try again.
          sleepQuietly();
        }
      }
    }
  }

  private void chunkRecord(byte[] value) {
    if (!(Wire.chunkRecord(value) instanceof Wire.Decoded.Ok<ChunkRecord> ok)) {
      return;
    }
    ChunkRecord c = ok.value();
    if (c.hasBatch()) {
      batches.computeIfAbsent(c.getBatch().getJobId(), j -> new java.util.concurrent.atomic.AtomicLong()).incrementAndGet();
    } else if (c.hasStarted()) {
      RangeStarted s = c.getStarted();
      attempts.putIfAbsent(s.getAttemptId(), new Attempt(s.getJobId(), s.getRangeIndex(), s.getAttemptId(),
          s.getWorker(), Instant.now(), false));
    } else if (c.hasDone()) {
      RangeDone d = c.getDone();
      attempts.merge(d.getAttemptId(), new Attempt(d.getJobId(), d.getRangeIndex(), d.getAttemptId(), d.getWorker(),
          Instant.now(), true), (was, now) -> new Attempt(was.jobId(), was.range(), was.attemptId(), was.worker(),
          was.seen(), true));
    }
  }

  /** ChunkBatch records of the job seen on the chunks topic so far (data the workers produced). */
  public long chunkBatches(String jobId) {
    java.util.concurrent.atomic.AtomicLong n = batches.get(jobId);
    return n == null ? 0 : n.get();
  }

  /** The job's attempts seen so far (started, or done with their start trimmed before it was read), oldest first. */
  public List<Attempt> attempts(String jobId) {
    return attempts.values().stream().filter(a -> a.jobId().equals(jobId))
        .sorted(java.util.Comparator.comparing(Attempt::seen)).toList();
  }

  /** Attempts of the job started and not done: the tasks workers hold now (or held when they died). */
  public List<Attempt> open(String jobId) {
    return attempts(jobId).stream().filter(a -> !a.done()).toList();
  }

  /** True when the writer reported the range done (RANGE_DONE on zcow.events). */
  public boolean rangeDone(String jobId, long range) {
    return of(jobId).stream().anyMatch(e -> e.kind() == EventKind.EVENT_KIND_RANGE_DONE && e.range() == range);
  }

  private static void sleepQuietly() {
    try {
      Thread.sleep(500);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Every event of {@code jobId} so far. */
  public List<Event> of(String jobId) {
    return events.stream().filter(e -> e.jobId().equals(jobId)).toList();
  }

  /** The first event of {@code jobId} matching {@code what} at or after {@code since}, if any yet. */
  public Optional<Event> first(String jobId, Instant since, Predicate<Event> what) {
    return events.stream().filter(e -> e.jobId().equals(jobId) && !e.time().isBefore(since) && what.test(e))
        .findFirst();
  }

  /** Waits for an event of {@code jobId} matching {@code what} at or after {@code since}; fails the test on timeout. */
  public Event await(String jobId, Instant since, Predicate<Event> what, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      Optional<Event> e = first(jobId, since, what);
      if (e.isPresent()) {
        return e.get();
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        fail("interrupted");
      }
    }
    fail("no matching event of job " + jobId + " since " + since + " within " + timeout + "; its events: "
        + of(jobId));
    return null;
  }

  /** True for a RANGE_DONE or a terminal STATE: the job moved. */
  public static boolean isProgress(Event e) {
    return e.kind() == EventKind.EVENT_KIND_RANGE_DONE
        || e.kind() == EventKind.EVENT_KIND_STATE && (e.state() == JobState.JOB_STATE_DONE
            || e.state() == JobState.JOB_STATE_FAILED || e.state() == JobState.JOB_STATE_CANCELLED);
  }

  /** Waits for the job's next progress at or after {@code since} (e.g. the fault) and returns when it happened. */
  public Instant awaitProgress(String jobId, Instant since, Duration timeout) {
    return await(jobId, since, JobEvents::isProgress, timeout).time();
  }

  /** Waits for {@code n} RANGE_DONE events of the job (any time): it is under way. */
  public void awaitRangesDone(String jobId, int n, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (rangesDone(jobId) < n) {
      if (System.nanoTime() > deadline) {
        fail("job " + jobId + " has " + rangesDone(jobId) + " RANGE_DONE events, not " + n + ", after " + timeout
            + "; its events: " + of(jobId));
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        fail("interrupted");
      }
    }
  }

  /** Distinct ranges reported done for the job. */
  public int rangesDone(String jobId) {
    return (int) of(jobId).stream().filter(e -> e.kind() == EventKind.EVENT_KIND_RANGE_DONE)
        .mapToLong(Event::range).distinct().count();
  }

  @Override
  public void close() {
    closed = true;
    try {
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
