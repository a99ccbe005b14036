package io.zcow.writer;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Progress;
import io.zcow.proto.RangeKey;
import io.zcow.proto.RangeTask;
import io.zcow.proto.RecordRef;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.RecordAuth;
import java.time.Clock;
import java.time.Duration;
import java.util.function.LongSupplier;
import org.apache.kafka.clients.producer.Producer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Everything a writer term produces, signed: JobEvents, the job lifecycle on the jobs topic
 * (the spec republished with its state and this term's leader epoch), and RangeTasks. Sends are
 * asynchronous; a failed send is logged (the next progress event, state or re-queue says it again).
 *
 * <p>Not thread safe: the term's thread.
 */
final class WriterOutput {
  private static final Logger LOG = LoggerFactory.getLogger(WriterOutput.class);

  private final WriterConfig config;
  private final Producer<String, byte[]> producer;
  private final RecordAuth auth;
  private final Clock wall;
  private final LongSupplier epoch;
  private final String origin;

  WriterOutput(WriterConfig config, Producer<String, byte[]> producer, Clock wall, LongSupplier epoch, String origin) {
    this.config = config;
    this.producer = producer;
    this.auth = config.auth();
    this.wall = wall;
    this.epoch = epoch;
    this.origin = origin;
  }

  /** The job's lifecycle: {@code spec} republished on the jobs topic in {@code state}, under this term's epoch. */
  void state(JobSpec spec, JobState state, String reason) {
    state(spec, state, reason, false);
  }

  /** Publishes the job's state; {@code refused}: see JobSpec.refused. */
  void state(JobSpec spec, JobState state, String reason, boolean refused) {
    JobSpec published = spec.toBuilder().setState(state).setReason(reason).setRefused(refused)
        .setWriterEpoch(epoch.getAsLong()).build();
    send(config.jobsTopic(), spec.getJobId(), published.toByteArray());
  }

  void task(RangeTask task) {
    send(config.tasksTopic(), new RangeKey(task.getJobId(), task.getRangeIndex()).toString(), task.toByteArray());
  }

  void event(String job, EventKind kind, JobState state, long range, String reason, Progress progress, RecordRef ref) {
    JobEvent.Builder e = JobEvent.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(job).setKind(kind)
        .setState(state).setReason(reason).setOrigin(origin).setRangeIndex(range).setTimeMs(wall.millis());
    if (progress != null) {
      e.setProgress(progress);
    }
    if (ref != null) {
      e.setRecord(ref);
    }
    send(config.eventsTopic(), job, e.build().toByteArray());
  }

  /** Waits until everything sent so far has been answered (a job's end is not left in a buffer). */
  void flush() {
    producer.flush();
  }

  void close() {
    try {
      producer.close(Duration.ofSeconds(10));
    } catch (RuntimeException e) {
      LOG.warn("[group={}] closing the producer: {}", config.group(), e.toString());
    }
  }

  private void send(String topic, String key, byte[] value) {
    producer.send(auth.record(topic, key, value), (md, ex) -> {
      if (ex != null) {
        LOG.warn("[group={}] cannot send to {} (key {}): {}", config.group(), topic, key, ex.toString());
      }
    });
  }
}
