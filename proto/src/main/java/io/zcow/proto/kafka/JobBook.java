package io.zcow.proto.kafka;

import io.zcow.proto.JobIds;
import io.zcow.proto.JobSpec;
import io.zcow.proto.RangeKey;
import io.zcow.proto.Wire;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * The latest JobSpec of every job on {@code zcow.jobs}, as every role reads it: records are
 * authenticated and decoded at this edge; one whose job id breaks {@link io.zcow.proto.JobIds}
 * or whose key is not its job id is ignored; a tombstone forgets the job; a writer's record with
 * a leader epoch older than one already seen for the job is dropped — a deposed writer cannot
 * publish a state that wins. Records of the coordinator and of {@code zcow cancel} (epoch 0) are
 * the user's word and always apply. The rest of a spec is checked by the role that acts on it
 * ({@link io.zcow.proto.JobSpecs#problem}): the writer fails a job it cannot run, with the reason.
 *
 * <p>Lookups are thread safe; {@link #apply} is called by one thread at a time (the reader's).
 */
public final class JobBook {
  /** What became of one record. */
  public sealed interface Applied {
    record Spec(JobSpec spec) implements Applied {}

    record Forgotten(String jobId) implements Applied {}

    /** Not applied: why (for a log line; refusals of forged records are the caller's to count). */
    record Ignored(String reason, boolean unauthenticated) implements Applied {}
  }

  private final RecordAuth auth;
  private final Map<String, JobSpec> specs = new ConcurrentHashMap<>();
  private final Map<String, Long> epochs = new ConcurrentHashMap<>();

  public JobBook(RecordAuth auth) {
    this.auth = auth;
  }

  public Applied apply(ConsumerRecord<String, byte[]> r) {
    RecordAuth.Verdict v = auth.verify(r);
    if (!v.ok()) {
      return new Applied.Ignored(v.reason(), true);
    }
    if (r.value() == null) {
      if (r.key() == null) {
        return new Applied.Ignored("a tombstone without a key", false);
      }
      specs.remove(r.key());
      return new Applied.Forgotten(r.key());
    }
    Wire.Decoded<JobSpec> d = Wire.jobSpec(r.value());
    if (d instanceof Wire.Decoded.Bad<JobSpec> bad) {
      return new Applied.Ignored(bad.reason(), false);
    }
    JobSpec spec = ((Wire.Decoded.Ok<JobSpec>) d).value();
    String idProblem = JobIds.problem(spec.getJobId());
    if (idProblem != null) {
      return new Applied.Ignored(idProblem, false);
    }
    if (r.key() != null && !r.key().equals(spec.getJobId())) {
      return new Applied.Ignored("keyed " + RangeKey.claimedJob(r.key()) + ", not by its job id", false);
    }
    return put(spec) ? new Applied.Spec(spec) : new Applied.Ignored("a state of writer epoch "
        + spec.getWriterEpoch() + ", older than " + epochs.get(spec.getJobId()), false);
  }

  /** Takes a spec read or published; false when it comes from a writer deposed for this job. */
  public boolean put(JobSpec spec) {
    String id = spec.getJobId();
    long epoch = spec.getWriterEpoch();
    if (epoch > 0) {
      long seen = epochs.getOrDefault(id, 0L);
      if (epoch < seen) {
        return false;
      }
      epochs.put(id, epoch);
    }
    specs.put(id, spec);
    return true;
  }

  public Optional<JobSpec> get(String jobId) {
    return Optional.ofNullable(specs.get(jobId));
  }

  public Collection<JobSpec> all() {
    return List.copyOf(specs.values());
  }
}
