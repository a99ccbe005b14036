package io.zcow.worker.kafka;

import io.zcow.BadInputException;
import io.zcow.RetriableException;
import io.zcow.proto.JobIds;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobSpecs;
import io.zcow.proto.RangeKey;
import io.zcow.proto.RangeLayout;
import io.zcow.proto.RangeTask;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.qcow2.ZstdClusterCompressor;
import io.zcow.worker.kafka.RangeRunner.Work;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * Decides what a task loop does with a task before any work: start it, skip it (its job has
 * ended), release it for another worker (this one cannot or may not read its source), or reject
 * it (no worker can do it). Stateless but for what it reads from the jobs; the loop's thread.
 */
final class TaskTriage {
  /** What to do with a task. */
  sealed interface Decision {
    record Start(Work work) implements Decision {}

    record Skip(String jobId, long range, String reason) implements Decision {}

    record Release(String jobId, long range, String reason) implements Decision {}

    record Reject(String jobId, long range, String reason) implements Decision {}

    /** No valid MAC (the cluster has a key): rejected, counted, reported at a limited rate. */
    record Unauthenticated(String jobId, long range, String reason) implements Decision {}
  }

  private final int thread;
  private final JobView jobs;
  private final WorkerConfig config;

  TaskTriage(int thread, JobView jobs, WorkerConfig config) {
    this.thread = thread;
    this.jobs = jobs;
    this.config = config;
  }

  Decision decide(ConsumerRecord<String, byte[]> r) {
    RecordAuth.Verdict verdict = config.kafka().auth().verify(r);
    if (!verdict.ok()) {
      // Nothing of an unauthenticated record is trusted; its key does not get to size our events.
      return new Decision.Unauthenticated(RangeKey.claimedJob(r.key()), RangeKey.claimedRange(r.key()),
          verdict.reason());
    }
    Wire.Decoded<RangeTask> decoded = Wire.rangeTask(r.value());
    if (decoded instanceof Wire.Decoded.Bad<RangeTask> bad) {
      return new Decision.Reject(RangeKey.claimedJob(r.key()), RangeKey.claimedRange(r.key()),
          "malformed task: " + bad.reason());
    }
    RangeTask task = ((Wire.Decoded.Ok<RangeTask>) decoded).value();
    String jobId = task.getJobId();
    long range = task.getRangeIndex();
    String idProblem = JobIds.problem(jobId);
    if (idProblem != null) {
      return new Decision.Reject(RangeKey.claimedJob(r.key()), range, "malformed task: " + idProblem);
    }
    Optional<JobSpec> known = jobs.get(jobId);
    if (known.isEmpty()) {
      try {
        known = jobs.refreshed(jobId, config.jobsTimeout());
      } catch (RetriableException e) {
        return new Decision.Release(jobId, range, e.getMessage());
      }
    }
    if (known.isEmpty()) {
      return new Decision.Reject(jobId, range, "unknown job (not in " + config.topics().jobs() + ")");
    }
    JobSpec spec = known.get();
    if (JobSpecs.isTerminal(spec.getState())) {
      return new Decision.Skip(jobId, range, "the job is " + spec.getState());
    }
    String jobProblem = JobSpecs.problem(spec);
    if (jobProblem != null) {
      return new Decision.Reject(jobId, range, "bad job: " + jobProblem);
    }
    if (spec.getCodec() != WireCodec.WIRE_CODEC_ZSTD) {
      return new Decision.Reject(jobId, range, "codec " + spec.getCodec() + " is not one this worker writes (zstd)");
    }
    if (spec.getLevel() < ZstdClusterCompressor.MIN_LEVEL || spec.getLevel() > ZstdClusterCompressor.MAX_LEVEL) {
      return new Decision.Reject(jobId, range, "zstd level " + spec.getLevel() + " is outside "
          + ZstdClusterCompressor.MIN_LEVEL + ".." + ZstdClusterCompressor.MAX_LEVEL);
    }
    RangeLayout layout = RangeLayout.of(spec);
    if (layout.rangeAt(task.getOffset(), task.getLength()) != range) {
      return new Decision.Reject(jobId, range, "range at " + task.getOffset() + " of " + task.getLength()
          + " bytes is not range " + range + " of the job (" + layout.ranges() + " ranges of " + spec.getRangeSize()
          + " bytes over " + spec.getSourceSize() + ")");
    }
    if (task.getChangedCount() > 0) {
      if (!JobSpecs.isIncremental(spec)) {
        return new Decision.Reject(jobId, range, "changed clusters in a task of a job that is not incremental");
      }
      String runs = JobSpecs.runsProblem(task.getChangedList(), layout.firstCluster(range), layout.endCluster(range),
          Integer.MAX_VALUE);
      if (runs != null) {
        return new Decision.Reject(jobId, range, "changed clusters: " + runs);
      }
    }
    if (spec.getByDigest() != (task.getPreviousDigests().size() > 0)) {
      return new Decision.Reject(jobId, range, spec.getByDigest() ? "a task of an incremental by digest without previous digests"
          : "previous digests in a task of a job that is not an incremental by digest");
    }
    if (spec.getByDigest() && task.getPreviousDigests().size() != layout.clusters(range) * JobSpecs.DIGEST_BYTES) {
      return new Decision.Reject(jobId, range, "previous digests of " + task.getPreviousDigests().size()
          + " bytes for a range of " + layout.clusters(range) + " clusters (32 bytes each)");
    }
    ImageGeometry geometry;
    try {
      geometry = ImageGeometry.forSource(spec.getSourceSize(), spec.getClusterSize());
    } catch (BadInputException | IllegalArgumentException e) {
      return new Decision.Reject(jobId, range, "bad job: " + e.getMessage());
    }
    SourcePolicy.Verdict v = config.sources().judge(spec.getSourceUri());
    if (v instanceof SourcePolicy.Verdict.NotHere n) {
      return new Decision.Release(jobId, range, n.reason());
    }
    if (v instanceof SourcePolicy.Verdict.Invalid inv) {
      return new Decision.Reject(jobId, range, inv.reason());
    }
    String attempt = config.origin() + "/" + thread + "/" + UUID.randomUUID().toString().substring(0, 8);
    return new Decision.Start(new Work(spec, range, ((SourcePolicy.Verdict.Readable) v).location(), geometry,
        layout.firstCluster(range), layout.clusters(range), task.getChangedList(),
        spec.getByDigest() ? task.getPreviousDigests().toByteArray() : null, Topics.chunks(spec.getWriterGroup()),
        task.getAttempt(), attempt, new AtomicBoolean()));
  }
}
