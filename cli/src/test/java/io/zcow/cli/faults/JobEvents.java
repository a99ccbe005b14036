package io.zcow.cli.faults;

import static org.junit.jupiter.api.Assertions.fail;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobState;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
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
 * for "the job made progress after the fault" and measure the time to recover.
 *
 * <p>An event's time is the sender's clock ({@code time_ms}; every role runs on this host).
 * Progress means RANGE_DONE or the job's terminal STATE. Thread safe.
 */
public final class JobEvents implements AutoCloseable {
  /** One event, decoded. */
  public record Event(String jobId, EventKind kind, JobState state, long range, Instant time, String reason,
      String origin) {}

  private final List<Event> events = new CopyOnWriteArrayList<>();
  private final Thread thread;
  private final String bootstrap;
  private volatile boolean closed;

  JobEvents(String bootstrap) {
    this.bootstrap = bootstrap;
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
      boolean assigned = false;
      while (!closed) {
        try {
          if (!assigned) {
            List<PartitionInfo> parts = consumer.partitionsFor(Topics.EVENTS, Duration.ofSeconds(5));
            if (parts == null || parts.isEmpty()) {
              Thread.sleep(500);
              continue;
            }
            List<TopicPartition> tps = new ArrayList<>();
            parts.forEach(p -> tps.add(new TopicPartition(p.topic(), p.partition())));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            assigned = true;
          }
          for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
            if (Wire.jobEvent(r.value()) instanceof Wire.Decoded.Ok<JobEvent> ok) {
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
