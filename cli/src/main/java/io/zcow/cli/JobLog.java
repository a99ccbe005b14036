package io.zcow.cli;

import io.zcow.RetriableException;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.KafkaSettings;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/**
 * What zcow.jobs and zcow.events say about every job, read to their ends at one moment by a
 * consumer without a group (assign + seek to the beginning; nothing is committed). Records that
 * do not decode are skipped: the status of the other jobs is still worth showing.
 */
final class JobLog {
  /**
   * One job as the topics tell it.
   *
   * @param spec the latest JobSpec
   * @param lastState the latest STATE event, or null
   * @param firstProgress the first PROGRESS event since the spec was last published, or null
   * @param lastProgress the latest PROGRESS event, or null
   * @param lastEventMs time of the latest event of any kind, or 0 when there is none
   */
  record Job(JobSpec spec, JobEvent lastState, JobEvent firstProgress, JobEvent lastProgress, long lastEventMs) {
    /**
     * The latest STATE event's state; SUBMITTED when there is none, or when the spec was published
     * again after a FAILED or CANCELLED state (a resume). A CANCELLED spec newer than the last
     * state event means the cancel is asked for and not yet done: reported as CANCELLED too,
     * since no task of the job runs any more.
     */
    JobState state() {
      if (spec.getState() == JobState.JOB_STATE_CANCELLED
          && (lastState == null || !terminal(lastState.getState()))) {
        return JobState.JOB_STATE_CANCELLED;
      }
      if (lastState == null) {
        return JobState.JOB_STATE_SUBMITTED;
      }
      JobState s = lastState.getState();
      if ((s == JobState.JOB_STATE_FAILED || s == JobState.JOB_STATE_CANCELLED)
          && spec.getState() != JobState.JOB_STATE_CANCELLED && spec.getCreatedAtMs() > lastState.getTimeMs()) {
        return JobState.JOB_STATE_SUBMITTED;
      }
      return s;
    }

    /** Time of the latest sign of life: an event, else the spec's publication. */
    long lastSeenMs() {
      return Math.max(lastEventMs, spec.getCreatedAtMs());
    }
  }

  static boolean terminal(JobState s) {
    return s == JobState.JOB_STATE_DONE || s == JobState.JOB_STATE_FAILED || s == JobState.JOB_STATE_CANCELLED;
  }

  private final Map<String, Job> jobs;
  private final long unauthenticated;

  private JobLog(Map<String, Job> jobs, long unauthenticated) {
    this.jobs = jobs;
    this.unauthenticated = unauthenticated;
  }

  /** Records skipped for a missing or bad MAC (only when the settings have a key). */
  long unauthenticated() {
    return unauthenticated;
  }

  /** Jobs in the order of their first JobSpec. */
  Map<String, Job> jobs() {
    return jobs;
  }

  Optional<Job> job(String id) {
    return Optional.ofNullable(jobs.get(id));
  }

  /**
   * Reads both topics to the ends they have now. With a key in the settings, records without a
   * valid MAC are skipped (and counted): a forged spec or event changes nothing shown.
   *
   * @throws RetriableException when the cluster does not answer within the settings' call timeout
   */
  static JobLog read(KafkaSettings settings) {
    Map<String, JobSpec> specs = new LinkedHashMap<>();
    List<JobEvent> events = new ArrayList<>();
    long unauthenticated = 0;
    try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(settings.assignedConsumer("zcow-status"))) {
      for (ConsumerRecord<String, byte[]> r : readAll(consumer, Topics.JOBS, settings.callTimeout())) {
        if (!settings.auth().verify(r).ok()) {
          unauthenticated++;
          continue;
        }
        if (Wire.jobSpec(r.value()) instanceof Wire.Decoded.Ok<JobSpec> ok) {
          specs.put(ok.value().getJobId(), ok.value());
        }
      }
      for (ConsumerRecord<String, byte[]> r : readAll(consumer, Topics.EVENTS, settings.callTimeout())) {
        if (!settings.auth().verify(r).ok()) {
          unauthenticated++;
          continue;
        }
        if (Wire.jobEvent(r.value()) instanceof Wire.Decoded.Ok<JobEvent> ok) {
          JobEvent e = ok.value();
          events.add(e.getTimeMs() > 0 ? e : e.toBuilder().setTimeMs(r.timestamp()).build());
        }
      }
    } catch (KafkaException e) {
      throw new RetriableException("cannot read " + Topics.JOBS + " and " + Topics.EVENTS + " at "
          + settings.bootstrapServers() + ": " + e.getMessage(), e);
    }
    Map<String, Job> jobs = new LinkedHashMap<>();
    specs.forEach((id, spec) -> jobs.put(id, new Job(spec, null, null, null, 0)));
    for (JobEvent e : events) {
      Job j = jobs.get(e.getJobId());
      if (j == null) {
        continue;
      }
      JobEvent lastState = j.lastState();
      JobEvent first = j.firstProgress();
      JobEvent last = j.lastProgress();
      if (e.getKind() == EventKind.EVENT_KIND_STATE && (lastState == null || e.getTimeMs() >= lastState.getTimeMs())) {
        lastState = e;
      } else if (e.getKind() == EventKind.EVENT_KIND_PROGRESS && e.getTimeMs() >= j.spec().getCreatedAtMs()) {
        if (first == null || e.getTimeMs() < first.getTimeMs()) {
          first = e;
        }
        if (last == null || e.getTimeMs() >= last.getTimeMs()) {
          last = e;
        }
      }
      jobs.put(e.getJobId(), new Job(j.spec(), lastState, first, last, Math.max(j.lastEventMs(), e.getTimeMs())));
    }
    return new JobLog(jobs, unauthenticated);
  }

  private static List<ConsumerRecord<String, byte[]>> readAll(KafkaConsumer<String, byte[]> consumer, String topic,
      Duration timeout) {
    List<TopicPartition> parts = new ArrayList<>();
    List<PartitionInfo> infos = consumer.partitionsFor(topic, timeout);
    if (infos == null) {
      return List.of();
    }
    for (PartitionInfo p : infos) {
      parts.add(new TopicPartition(p.topic(), p.partition()));
    }
    List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
    if (parts.isEmpty()) {
      return out;
    }
    consumer.assign(parts);
    consumer.seekToBeginning(parts);
    Map<TopicPartition, Long> ends = consumer.endOffsets(parts, timeout);
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!reached(consumer, ends, timeout)) {
      if (System.nanoTime() - deadline > 0) {
        throw new RetriableException("reading " + topic + " to its end took more than " + timeout.toSeconds() + " s", null);
      }
      for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(200))) {
        out.add(r);
      }
    }
    consumer.unsubscribe();
    return out;
  }

  private static boolean reached(KafkaConsumer<String, byte[]> consumer, Map<TopicPartition, Long> ends,
      Duration timeout) {
    for (Map.Entry<TopicPartition, Long> e : ends.entrySet()) {
      if (consumer.position(e.getKey(), timeout) < e.getValue()) {
        return false;
      }
    }
    return true;
  }
}
