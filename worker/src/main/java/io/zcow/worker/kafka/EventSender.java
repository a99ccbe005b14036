package io.zcow.worker.kafka;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.Wire;
import java.time.Clock;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Publishes a worker's JobEvents (keyed by job id) on the events topic. Best effort: an event
 * that cannot be sent is logged, never a reason to hold a task. Thread safe.
 */
final class EventSender {
  private static final Logger LOG = LoggerFactory.getLogger(EventSender.class);

  private final Producer<String, byte[]> producer;
  private final String topic;
  private final String origin;
  private final Clock clock;

  EventSender(Producer<String, byte[]> producer, String topic, String origin, Clock clock) {
    this.producer = producer;
    this.topic = topic;
    this.origin = origin;
    this.clock = clock;
  }

  /** A task this worker cannot or may not do, handed back for another worker. */
  void taskReleased(String jobId, long range, String reason) {
    send(jobId, range, EventKind.EVENT_KIND_TASK_RELEASED, reason);
  }

  /** A task no worker can do (malformed, unknown job or codec), archived by the broker. */
  void taskRejected(String jobId, long range, String reason) {
    send(jobId, range, EventKind.EVENT_KIND_TASK_REJECTED, reason);
  }

  private void send(String jobId, long range, EventKind kind, String reason) {
    JobEvent event = JobEvent.newBuilder()
        .setFormatVersion(Wire.FORMAT_VERSION)
        .setJobId(jobId)
        .setKind(kind)
        .setReason(reason)
        .setOrigin(origin)
        .setRangeIndex(range)
        .setTimeMs(clock.millis())
        .build();
    try {
      producer.send(new ProducerRecord<>(topic, jobId, event.toByteArray()), (md, e) -> {
        if (e != null) {
          LOG.warn("[job={} range={}] {} event not sent to {}: {}", jobId, range, kind, topic, e.toString());
        }
      });
    } catch (RuntimeException e) {
      LOG.warn("[job={} range={}] {} event not sent to {}: {}", jobId, range, kind, topic, e.toString());
    }
  }
}
