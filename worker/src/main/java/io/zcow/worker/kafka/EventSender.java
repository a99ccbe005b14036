package io.zcow.worker.kafka;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.proto.kafka.ReportLimiter;
import java.time.Clock;
import org.apache.kafka.clients.producer.Producer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Publishes a worker's JobEvents (keyed by job id) on the events topic, signed when the cluster
 * has a key. Best effort: an event that cannot be sent is logged, never a reason to hold a task.
 * Reports of unauthenticated tasks are rate limited ({@link #UNAUTHENTICATED_REPORT_MILLIS}), so
 * a flood of forged tasks does not become a flood of events. Thread safe.
 */
final class EventSender {
  private static final Logger LOG = LoggerFactory.getLogger(EventSender.class);

  /** At most one event about unauthenticated tasks per this many milliseconds. */
  static final long UNAUTHENTICATED_REPORT_MILLIS = 1000;

  private final Producer<String, byte[]> producer;
  private final RecordAuth auth;
  private final String topic;
  private final String origin;
  private final Clock clock;

  private final ReportLimiter unauthenticated = new ReportLimiter(UNAUTHENTICATED_REPORT_MILLIS);

  EventSender(Producer<String, byte[]> producer, RecordAuth auth, String topic, String origin, Clock clock) {
    this.producer = producer;
    this.auth = auth;
    this.topic = topic;
    this.origin = origin;
    this.clock = clock;
  }

  /** A task this worker cannot or may not do, handed back for another worker. */
  void taskReleased(String jobId, long range, String reason) {
    send(jobId, range, EventKind.EVENT_KIND_TASK_RELEASED, reason);
  }

  /** A task whose range this worker failed to read, done with: the writer issues the range again, counted. */
  void attemptFailed(String jobId, long range, int attempt, String reason) {
    send(jobId, range, EventKind.EVENT_KIND_ATTEMPT_FAILED, reason, attempt);
  }

  /** A task no worker can do (malformed, unknown job or codec), archived by the broker. */
  void taskRejected(String jobId, long range, String reason) {
    send(jobId, range, EventKind.EVENT_KIND_TASK_REJECTED, reason);
  }

  /**
   * A task refused for its MAC (none, or not under this worker's key); rate limited.
   *
   * @return whether it was reported (else it was only counted, for a later report)
   */
  boolean taskUnauthenticated(String jobId, long range, String reason) {
    long held = unauthenticated.tryReport(clock.millis());
    if (held < 0) {
      return false;
    }
    send(jobId, range, EventKind.EVENT_KIND_TASK_REJECTED, reason
        + (held > 0 ? " (and " + held + " more unauthenticated tasks since the last report)" : ""));
    return true;
  }

  private void send(String jobId, long range, EventKind kind, String reason) {
    send(jobId, range, kind, reason, 0);
  }

  private void send(String jobId, long range, EventKind kind, String reason, int attempt) {
    JobEvent event = JobEvent.newBuilder()
        .setFormatVersion(Wire.FORMAT_VERSION)
        .setJobId(jobId)
        .setKind(kind)
        .setReason(reason)
        .setOrigin(origin)
        .setRangeIndex(range)
        .setAttempt(attempt)
        .setTimeMs(clock.millis())
        .build();
    try {
      producer.send(auth.record(topic, jobId, event.toByteArray()), (md, e) -> {
        if (e != null) {
          LOG.warn("[job={} range={}] {} event not sent to {}: {}", jobId, range, kind, topic, e.toString());
        }
      });
    } catch (RuntimeException e) {
      LOG.warn("[job={} range={}] {} event not sent to {}: {}", jobId, range, kind, topic, e.toString());
    }
  }
}
