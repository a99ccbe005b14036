package io.zcow.cli;

import io.zcow.RetriableException;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.JobBook;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.TopicReader;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.KafkaException;

/**
 * What zcow.jobs and zcow.events say about every job, read to their ends at one moment through
 * {@link TopicReader}s (no consumer group; nothing is committed). The jobs go through a {@link
 * JobBook}, as every role reads them: a job's state is its JobSpec's — the lifecycle the writer
 * publishes under its leader epoch, or SUBMITTED/CANCELLED from the coordinator and {@code zcow
 * cancel} — never guessed from events. Events give progress and signs of life only. Records that
 * do not decode are skipped: the status of the other jobs is still worth showing.
 */
final class JobLog {
  /**
   * One job as the topics tell it.
   *
   * @param spec the latest JobSpec that counts (a deposed writer's excluded)
   * @param firstProgress the first PROGRESS event since the spec was created, or null
   * @param lastProgress the latest PROGRESS event, or null
   * @param lastEventMs time of the latest event of any kind, or 0 when there is none
   */
  record Job(JobSpec spec, JobEvent firstProgress, JobEvent lastProgress, long lastEventMs) {
    /** The spec's state; a spec that names none is SUBMITTED (nothing has taken it on yet). */
    JobState state() {
      JobState s = spec.getState();
      return s == JobState.JOB_STATE_UNSPECIFIED || s == JobState.UNRECOGNIZED ? JobState.JOB_STATE_SUBMITTED : s;
    }

    /** Time of the latest sign of life: an event, else the spec's publication. */
    long lastSeenMs() {
      return Math.max(lastEventMs, spec.getCreatedAtMs());
    }
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
    JobBook book = new JobBook(settings.auth());
    Set<String> firstPublished = new LinkedHashSet<>();
    Map<String, Job> jobs = new LinkedHashMap<>();
    long[] unauthenticated = {0};
    try {
      readAll(settings, Topics.JOBS, r -> {
        JobBook.Applied a = book.apply(r);
        if (a instanceof JobBook.Applied.Ignored i && i.unauthenticated()) {
          unauthenticated[0]++;
        } else if (a instanceof JobBook.Applied.Forgotten f) {
          firstPublished.remove(f.jobId());
        } else if (a instanceof JobBook.Applied.Spec s) {
          firstPublished.add(s.spec().getJobId());
        }
      });
      firstPublished.forEach(id -> jobs.put(id, new Job(book.get(id).orElseThrow(), null, null, 0)));
      readAll(settings, Topics.EVENTS, r -> {
        if (!settings.auth().verify(r).ok()) {
          unauthenticated[0]++;
        } else if (Wire.jobEvent(r.value()) instanceof Wire.Decoded.Ok<JobEvent> ok) {
          JobEvent e = ok.value();
          jobs.computeIfPresent(e.getJobId(), (id, j) -> seen(j, e.getTimeMs() > 0 ? e
              : e.toBuilder().setTimeMs(r.timestamp()).build()));
        }
      });
    } catch (KafkaException e) {
      throw new RetriableException("cannot read " + Topics.JOBS + " and " + Topics.EVENTS + " at "
          + settings.bootstrapServers() + ": " + e.getMessage(), e);
    }
    return new JobLog(jobs, unauthenticated[0]);
  }

  private static Job seen(Job j, JobEvent e) {
    JobEvent first = j.firstProgress();
    JobEvent last = j.lastProgress();
    if (e.getKind() == EventKind.EVENT_KIND_PROGRESS && e.getTimeMs() >= j.spec().getCreatedAtMs()) {
      if (first == null || e.getTimeMs() < first.getTimeMs()) {
        first = e;
      }
      if (last == null || e.getTimeMs() >= last.getTimeMs()) {
        last = e;
      }
    }
    return new Job(j.spec(), first, last, Math.max(j.lastEventMs(), e.getTimeMs()));
  }

  /** Everything published to {@code topic} so far; nothing when the topic does not exist yet. */
  private static void readAll(KafkaSettings settings, String topic, Consumer<ConsumerRecord<String, byte[]>> sink) {
    Duration timeout = settings.callTimeout();
    try (TopicReader reader = new TopicReader(new KafkaConsumer<>(settings.assignedConsumer("zcow-status")), topic,
        timeout)) {
      if (reader.assign(false)) {
        reader.readToEnd(timeout, sink);
      }
    }
  }
}
