package io.zcow.writer;

import io.zcow.CorruptException;
import io.zcow.RetriableException;
import io.zcow.TargetIoException;
import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EntryKind;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeKey;
import io.zcow.proto.RecordRef;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.proto.kafka.ReportLimiter;
import io.zcow.qcow2.ClusterKind;
import io.zcow.qcow2.PutResult;
import java.util.Optional;
import java.util.function.LongSupplier;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Applies chunk records, one at a time, in one order: authenticate → decode → find the job →
 * validate → put. Nothing of a record is believed before its MAC (with a key) and nothing of a
 * batch is allocated before every entry passed ({@link BatchCheck}); a refused record is counted,
 * logged with its topic, partition and offset, reported on the events topic, and never written.
 * Ends and re-issues it causes are asked of the job ({@link JobRun#requestEnd}) or its pacer, and
 * taken by the term between batches.
 *
 * <p>Not thread safe: the term's thread.
 */
final class ChunkIngest {
  private static final Logger LOG = LoggerFactory.getLogger(ChunkIngest.class);
  /** At most one event (and warning) about unauthenticated records per this many milliseconds. */
  static final long UNAUTHENTICATED_REPORT_MILLIS = 1000;

  /** Where the ingest reports re-issues and activity. */
  interface Pacing {
    /** Bad data arrived for the range: issue it again (at most once per range timeout). */
    void badData(JobRun run, long range);

    /** The range started, or a cluster of it arrived. */
    void active(JobRun run, long range);
  }

  private final WriterConfig config;
  private final JobTable jobs;
  private final WriterOutput out;
  private final WriterMetrics metrics;
  private final Runnable checkLeader;
  private final Pacing pacing;
  private final LongSupplier now;
  private final RecordAuth auth;
  private final ReportLimiter unauthenticatedReports = new ReportLimiter(UNAUTHENTICATED_REPORT_MILLIS);

  ChunkIngest(WriterConfig config, JobTable jobs, WriterOutput out, WriterMetrics metrics, Runnable checkLeader,
      Pacing pacing, LongSupplier now) {
    this.config = config;
    this.jobs = jobs;
    this.out = out;
    this.metrics = metrics;
    this.checkLeader = checkLeader;
    this.pacing = pacing;
    this.now = now;
    this.auth = config.auth();
  }

  /** Applies one record; returns the open job it touched, if any. */
  JobRun apply(ConsumerRecord<String, byte[]> r) {
    RecordRef ref = RecordRef.newBuilder().setTopic(r.topic()).setPartition(r.partition()).setOffset(r.offset()).build();
    metrics.bytesIn(r.value() == null ? 0 : r.value().length);
    if (!authentic(r, ref)) {
      // Refused before anything of it is believed: no job is looked up, no range issued again (a
      // forger must not be able to make the workers redo ranges or exhaust a job's attempts).
      return null;
    }
    Wire.Decoded<ChunkRecord> d = Wire.chunkRecord(r.value());
    if (d instanceof Wire.Decoded.Bad<ChunkRecord> bad) {
      Optional<RangeKey> key = RangeKey.parse(r.key());
      JobRun run = key.map(k -> jobs.known(k.job())).orElse(null);
      reject(run, RangeKey.claimedJob(r.key()), RangeKey.claimedRange(r.key()), bad.reason(), ref);
      if (run != null && run.isOpen() && run.layout.contains(key.get().range())) {
        pacing.badData(run, key.get().range());
      }
      return run != null && run.isOpen() ? run : null;
    }
    ChunkRecord record = ((Wire.Decoded.Ok<ChunkRecord>) d).value();
    String job = switch (record.getBodyCase()) {
      case BATCH -> record.getBatch().getJobId();
      case DONE -> record.getDone().getJobId();
      default -> record.getStarted().getJobId();
    };
    long range = switch (record.getBodyCase()) {
      case BATCH -> record.getBatch().getRangeIndex();
      case DONE -> record.getDone().getRangeIndex();
      default -> record.getStarted().getRangeIndex();
    };
    JobRun run = jobs.known(job);
    if (run == null && jobs.isPendingOpen(job)) {
      // Its image is locked by another writer: its records cannot be skipped, so end the term and
      // recover from the checkpoint (recovery opens every job before it reads a chunk).
      throw new RetriableException("[job=" + job + "] record at " + r.partition() + "@" + r.offset()
          + " for a job whose target is still locked by another writer", null);
    }
    if (run == null) {
      Optional<JobSpec> spec = jobs.spec(job);
      if (spec.isEmpty()) {
        reject(null, RangeKey.claimedJob(job), range, "unknown job " + RangeKey.claimedJob(job), ref);
      } else if (!spec.get().getWriterGroup().equals(config.group())) {
        reject(null, job, range, "job " + job + " belongs to writer group '" + spec.get().getWriterGroup() + "'", ref);
      } else if (jobs.isQueued(job)) {
        // No task of a queued job is issued, so this is left from an earlier run of it: every
        // range not complete is issued again when it runs.
        metrics.skippedQueued();
        LOG.warn("[job={} range={}] record at {}@{} for a QUEUED job: skipped", job, range, r.partition(), r.offset());
      } else {
        LOG.debug("[job={} range={}] record at {}@{} for a job that is not running: skipped", job, range,
            r.partition(), r.offset());
      }
      return null;
    }
    if (!run.isOpen()) {
      LOG.debug("{} late record at {}@{} after the job ended: skipped", run.tag(range), r.partition(), r.offset());
      return null;
    }
    switch (record.getBodyCase()) {
      case STARTED -> {
        if (run.layout.contains(range)) {
          pacing.active(run, range);
        } else {
          reject(run, job, range, "RangeStarted of range " + Long.toUnsignedString(range) + " outside the job's "
              + run.layout.ranges() + " ranges", ref);
        }
      }
      case DONE -> LOG.debug("{} RangeDone of attempt {}", run.tag(range), record.getDone().getAttemptId());
      default -> put(run, record.getBatch(), ref);
    }
    return run;
  }

  private void put(JobRun run, ChunkBatch batch, RecordRef ref) {
    long range = batch.getRangeIndex();
    String problem = BatchCheck.problem(batch, run.layout, run.spec.getByDigest());
    if (problem != null) {
      reject(run, run.id, range, problem, ref);
      if (run.layout.contains(range)) {
        pacing.badData(run, range);
      }
      return;
    }
    boolean progressed = false;
    for (int i = 0; i < batch.getEntriesCount(); i++) {
      ChunkEntry e = batch.getEntries(i);
      checkLeader.run();
      try {
        if (e.getKind() == EntryKind.ENTRY_KIND_ZERO) {
          long added = run.image.putZeros(e.getCluster(), e.getCount());
          progressed |= added > 0;
          metrics.duplicates(e.getCount() - added);
        } else if (e.getKind() == EntryKind.ENTRY_KIND_UNCHANGED) {
          long added = run.image.putUnchanged(e.getCluster(), e.getCount());
          run.unchangedReceived += added;
          progressed |= added > 0;
          metrics.duplicates(e.getCount() - added);
        } else {
          ClusterKind kind = e.getKind() == EntryKind.ENTRY_KIND_RAW ? ClusterKind.RAW : ClusterKind.COMPRESSED;
          byte[] digest = e.getDigest().isEmpty() ? null : e.getDigest().toByteArray();
          if (run.image.put(e.getCluster(), kind, e.getPayload().asReadOnlyByteBuffer(), digest) == PutResult.ACCEPTED) {
            progressed = true;
            metrics.write();
          } else {
            metrics.duplicates(1);
          }
        }
      } catch (CorruptException ex) {
        // Only a payload that does not decode (--verify-payloads) gets here; the entries before it are good.
        reject(run, run.id, range, "entry " + i + ": " + ex.getMessage(), ref);
        pacing.badData(run, range);
        break;
      } catch (TargetIoException ex) {
        run.requestEnd(JobState.JOB_STATE_FAILED, ex.getMessage());
        run.targetFailed = ex;
        return;
      } catch (RuntimeException ex) {
        if (Isolation.endsTheTerm(ex)) {
          throw ex;
        }
        // That image failed (an I/O error): that job ends; the batch's other jobs go on.
        run.requestEnd(JobState.JOB_STATE_FAILED, "writing the image failed: " + Isolation.reason(ex));
        return;
      }
    }
    if (progressed) {
      pacing.active(run, range);
    }
  }

  /**
   * Whether the record carries a valid MAC (always, without a key). One that does not is counted
   * and reported — at most once per {@link #UNAUTHENTICATED_REPORT_MILLIS}, with the number held
   * back — under the job its key claims, which nothing vouches for.
   */
  private boolean authentic(ConsumerRecord<String, byte[]> r, RecordRef ref) {
    RecordAuth.Verdict v = auth.verify(r);
    if (v.ok()) {
      return true;
    }
    metrics.unauthenticated(v.status() == RecordAuth.Status.MISSING);
    String job = RangeKey.claimedJob(r.key());
    long range = RangeKey.claimedRange(r.key());
    long held = unauthenticatedReports.tryReport(now.getAsLong());
    if (held < 0) {
      LOG.debug("[job={} range={}] refused record {}-{}@{}: {}", job, range, r.topic(), r.partition(), r.offset(),
          v.reason());
      return false;
    }
    String reason = "record " + r.topic() + "-" + r.partition() + "@" + r.offset() + " refused: " + v.reason()
        + (held > 0 ? " (and " + held + " more unauthenticated records since the last report)" : "");
    LOG.warn("[job={} range={}] {}", job, range, reason);
    out.event(job, EventKind.EVENT_KIND_RECORD_REJECTED, JobState.JOB_STATE_UNSPECIFIED, range, reason, null, ref);
    return false;
  }

  private void reject(JobRun run, String job, long range, String reason, RecordRef ref) {
    LOG.warn("[job={} range={}] rejected record {}-{}@{}: {}", job, range, ref.getTopic(), ref.getPartition(),
        ref.getOffset(), reason);
    metrics.reject();
    if (run != null) {
      run.rejected++;
    }
    out.event(job, EventKind.EVENT_KIND_RECORD_REJECTED, JobState.JOB_STATE_UNSPECIFIED, range, reason, null, ref);
  }
}
