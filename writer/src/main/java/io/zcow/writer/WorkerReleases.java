package io.zcow.writer;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.proto.kafka.TopicReader;
import java.time.Duration;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Follows the events topic, from its end at the term's start, for what workers say of the tasks
 * they could not do: EVENT_KIND_ATTEMPT_FAILED when a worker tried to read the range and failed (a
 * read error, an NBD server gone; the writer issues the range again, counted), and
 * EVENT_KIND_TASK_RELEASED when it handed the task back untried (a source it may not read) or
 * could not send its chunks. Why a worker could not read a range is the only place that reason
 * exists, and a range that runs out of attempts fails its job with it ({@link RangePacer#released}).
 *
 * <p>Every record is checked here, at the edge: its MAC, its bytes, its kind, and the fields a
 * {@link Release} needs; anything else is skipped (the events topic also carries the writers' own
 * events). Not thread safe: the term's thread.
 */
final class WorkerReleases implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(WorkerReleases.class);
  /** A reason is kept to this many characters: a worker's text must not swell a job's FAILED reason. */
  static final int MAX_REASON_CHARS = 1000;

  /**
   * A worker's report that it handed a task back, decoded and checked.
   *
   * @param reason why, as the worker said it (its text names the worker), at most {@link
   *     #MAX_REASON_CHARS} characters
   * @param failedAttempt the attempt number of the task the worker tried and failed, or -1 when
   *     it handed the task back without failing it
   */
  record Release(String jobId, long range, String reason, int failedAttempt) {
    Release {
      if (jobId == null || jobId.isEmpty()) {
        throw new IllegalArgumentException("jobId must not be empty");
      }
      if (range < 0) {
        throw new IllegalArgumentException("range must not be negative: " + range);
      }
      if (failedAttempt < -1) {
        throw new IllegalArgumentException("failedAttempt must be an attempt number or -1: " + failedAttempt);
      }
      if (reason == null || reason.isBlank()) {
        throw new IllegalArgumentException("reason must not be blank");
      }
      reason = reason.length() > MAX_REASON_CHARS ? reason.substring(0, MAX_REASON_CHARS) + "…" : reason;
    }

    /** The release of an event, or null when the event is not a well-formed release. */
    static Release of(JobEvent e) {
      boolean failed = e.getKind() == EventKind.EVENT_KIND_ATTEMPT_FAILED;
      if (!failed && e.getKind() != EventKind.EVENT_KIND_TASK_RELEASED || e.getJobId().isEmpty()
          || e.getRangeIndex() < 0 || e.getReason().isBlank()) {
        return null;
      }
      if (failed && e.getAttempt() < 0) { // uint32 past int's range: not an attempt any writer issued
        return null;
      }
      return new Release(e.getJobId(), e.getRangeIndex(), e.getReason().strip(), failed ? e.getAttempt() : -1);
    }
  }

  private final TopicReader reader;
  private final RecordAuth auth;
  private boolean assigned;
  private long refused;

  /** @param reader the events topic's reader, owned from now on */
  WorkerReleases(TopicReader reader, RecordAuth auth) {
    this.reader = reader;
    this.auth = auth;
  }

  /** Hands the releases published since the last call (none before the first) to {@code sink}; never waits. */
  void poll(Consumer<Release> sink) {
    if (!assigned) {
      assigned = reader.assign(true); // earlier releases are history: the pacer starts afresh each term
      if (!assigned) {
        return;
      }
    }
    reader.poll(Duration.ZERO, r -> {
      Release release = decode(r);
      if (release != null) {
        sink.accept(release);
      }
    });
  }

  private Release decode(ConsumerRecord<String, byte[]> r) {
    if (!auth.verify(r).ok()) {
      if (refused++ % 1000 == 0) {
        LOG.debug("event {}-{}@{} without a valid MAC ignored ({} so far)", r.topic(), r.partition(), r.offset(), refused);
      }
      return null;
    }
    return Wire.jobEvent(r.value()) instanceof Wire.Decoded.Ok<JobEvent> ok ? Release.of(ok.value()) : null;
  }

  @Override
  public void close() {
    reader.close();
  }
}
