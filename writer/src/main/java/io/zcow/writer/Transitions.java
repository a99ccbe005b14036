package io.zcow.writer;

import io.zcow.BadInputException;
import io.zcow.TargetIoException;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Progress;
import io.zcow.qcow2.ImageStats;
import io.zcow.qcow2.ImageWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Every end of a job, in one fixed order: checkpoint → close the image → record the state
 * (ZooKeeper under the epoch, then the jobs topic) → event → flush. A step that does not apply is
 * skipped, never reordered: a full target takes no checkpoint (that needs space too), a job that
 * never opened has no image, a cancelled one has its image removed instead of closed.
 *
 * <p>Called between batches of records only. Not thread safe: the term's thread.
 */
final class Transitions {
  private static final Logger LOG = LoggerFactory.getLogger(Transitions.class);

  private final WriterZk zk;
  private final WriterOutput out;
  private final CheckpointRound checkpoints;
  private final Supplier<List<JobRun>> open;
  private final TargetConfinement confinement;

  Transitions(WriterZk zk, WriterOutput out, CheckpointRound checkpoints, Supplier<List<JobRun>> open,
      TargetConfinement confinement) {
    this.zk = zk;
    this.out = out;
    this.checkpoints = checkpoints;
    this.open = open;
    this.confinement = confinement;
  }

  /** Checkpoints every open job; those whose image cannot be checkpointed fail at their last one. */
  void checkpointAll() {
    CheckpointRound.Result r = checkpoints.run(open.get());
    r.targetFailed().forEach(this::targetFailed);
    r.failed().forEach(this::failAtLastCheckpoint);
  }

  /** An open job ends DONE (its image finished and renamed) or FAILED (its image kept, resumable). */
  void end(JobRun run, JobState to, String reason) {
    checkpointAll(); // the end of a job is a checkpoint too: a crash during finish resumes here
    if (run.state != JobRun.State.OPEN) {
      return; // its checkpoint found the target full, and said so
    }
    Progress progress = run.progress();
    if (to == JobState.JOB_STATE_DONE) {
      ImageStats stats = run.image.stats();
      try {
        run.image.finish();
      } catch (TargetIoException e) {
        targetFailed(run, e);
        return;
      } catch (RuntimeException e) {
        if (Isolation.endsTheTerm(e)) {
          throw e;
        }
        failAtLastCheckpoint(run, "finishing the image failed: " + Isolation.reason(e));
        return;
      }
      progress = progress.toBuilder().setRangesDone(run.layout.ranges()).setGuestBytesDone(run.layout.virtualSize())
          .setHostBytes(sizeOf(run.target, stats.hostBytes())).build();
      LOG.info("{} done: {} bytes, {} duplicates, {} rejected, {} re-queued", run.tag(-1), progress.getHostBytes(),
          stats.duplicates(), run.rejected, run.requeued);
    } else {
      LOG.error("{} FAILED: {}", run.tag(-1), reason);
      run.image.close();
    }
    record(run, to == JobState.JOB_STATE_DONE ? JobRun.State.DONE : JobRun.State.FAILED, to, reason, progress);
  }

  /**
   * The job's target failed (its file system is full, or an I/O error: a write, read or fsync of
   * its image): its image stops where it is, without a checkpoint (never another fsync of that
   * file); the .part file and the last committed checkpoint stay, so a resubmission once the
   * operator has acted resumes there. The other jobs of the writer go on.
   */
  void targetFailed(JobRun run, TargetIoException e) {
    failAtLastCheckpoint(run, e.getMessage() + "; " + ImageWriter.partPath(run.target).getFileName()
        + " and its checkpoint are kept: " + e.remedy());
  }

  /**
   * The job's image failed (a full target, an I/O error): it stops where it is, without a
   * checkpoint (that would write to the same image); its last committed checkpoint stays.
   */
  void failAtLastCheckpoint(JobRun run, String reason) {
    LOG.error("{} FAILED: {}", run.tag(-1), reason);
    try {
      run.image.close();
    } catch (RuntimeException closeFailure) {
      LOG.warn("{} closing the image: {}", run.tag(-1), closeFailure.toString());
    }
    record(run, JobRun.State.FAILED, JobState.JOB_STATE_FAILED, reason, run.progress());
  }

  /** A job ends before anything of it was opened (a damaged checkpoint, a failed create): nothing to close. */
  JobRun failUnopened(JobSpec spec, String reason) {
    return endUnopened(spec, reason, false);
  }

  /**
   * A job whose input cannot be used (its target, its previous image, a malformed spec) ends
   * before anything of it was opened, marked refused: as it is, it fails again wherever it runs.
   */
  JobRun refuse(JobSpec spec, String reason) {
    return endUnopened(spec, reason, true);
  }

  private JobRun endUnopened(JobSpec spec, String reason, boolean refused) {
    LOG.error("[job={}] FAILED before anything was written{}: {}", spec.getJobId(), refused ? " (refused)" : "",
        reason);
    JobRun run = JobRun.ended(spec, JobRun.State.OPEN);
    record(run, JobRun.State.FAILED, JobState.JOB_STATE_FAILED, reason, run.progress(), refused);
    return run;
  }

  /** The previous leader finished the image but died before recording it. */
  JobRun doneEarlier(JobSpec spec) {
    JobRun run = JobRun.ended(spec, JobRun.State.OPEN);
    record(run, JobRun.State.DONE, JobState.JOB_STATE_DONE, "", run.progress());
    return run;
  }

  /** The job is cancelled: its image (or a .part left by an earlier term) and its checkpoint are removed. */
  JobRun cancel(JobSpec spec, JobRun run) {
    if (run != null && run.image != null && run.state == JobRun.State.OPEN) {
      run.image.abort();
    } else {
      try {
        Path part = ImageWriter.partPath(confinement.resolve(spec.getTargetPath()));
        if (Files.exists(part)) {
          PartFiles.removeUnlocked(part, "[job=" + spec.getJobId() + "]");
        }
      } catch (BadInputException e) {
        // nothing of it can exist inside the root
      }
    }
    zk.clearCheckpoint(spec.getJobId());
    JobRun ended = run != null ? run : JobRun.ended(spec, JobRun.State.OPEN);
    LOG.info("[job={}] cancelled: .part and checkpoint removed", spec.getJobId());
    record(ended, JobRun.State.CANCELLED, JobState.JOB_STATE_CANCELLED, "cancelled", ended.progress());
    return ended;
  }

  /** The last three steps, shared by every end: state (ZooKeeper, jobs topic), event, flush. */
  private void record(JobRun run, JobRun.State state, JobState to, String reason, Progress progress) {
    record(run, state, to, reason, progress, false);
  }

  private void record(JobRun run, JobRun.State state, JobState to, String reason, Progress progress,
      boolean refused) {
    run.state = state;
    zk.setTerminal(run.id, new WriterZk.TerminalState(to, run.spec.getCreatedAtMs(), reason, refused));
    out.state(run.spec, to, reason, refused);
    out.event(run.id, EventKind.EVENT_KIND_STATE, to, -1, reason, progress, null);
    out.flush();
  }

  private static long sizeOf(Path file, long otherwise) {
    try {
      return Files.size(file);
    } catch (IOException e) {
      return otherwise;
    }
  }
}
