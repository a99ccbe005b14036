package io.zcow.cli;

import io.zcow.coordinator.Coordinator;
import io.zcow.coordinator.JobStatus;
import io.zcow.coordinator.Partitioner;
import io.zcow.proto.ClusterRun;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobSpecs;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/** What {@code zcow backup} shows while it follows a job and when the job ends, embedded or on a cluster. */
final class BackupFollow {
  private BackupFollow() {}

  /** Follows the job to its end with a progress display; null when interrupted. */
  static Coordinator.Outcome follow(Coordinator coordinator, ProgressListener listener, Partitioner partitioner,
      JobSpec spec, Progress.Mode mode, PrintStream err) {
    long disk = partitioner.geometry().virtualSize();
    boolean byBitmap = JobSpecs.isIncremental(spec) && !spec.getByDigest(); // by digest: every cluster is read
    if (byBitmap) {
      // Until the writer reports its figure (which adds a grown tail): the bitmap's clusters.
      long planned = 0;
      for (ClusterRun run : spec.getPlan().getChangedList()) {
        planned += run.getCount() * spec.getClusterSize();
      }
      listener.changedTotal.set(Math.min(planned, disk));
    }
    try (Progress p = byBitmap
        ? Progress.ofChanged(mode, "backup", listener.changedTotal::get, disk, listener.changedDone::get,
            listener.hostBytes::get, err)
        : new Progress(mode, "backup", disk, listener.guestBytes::get, listener.hostBytes::get, err)) {
      Coordinator.Outcome outcome = coordinator.run();
      p.close(outcome != null && outcome.done());
      return outcome;
    }
  }

  /**
   * Prints how the job ended and returns the exit code. {@code localImage} is the image this
   * process can see (the embedded cluster's target), or null when the job ran on a cluster.
   */
  static int report(Coordinator.Outcome outcome, Coordinator coordinator, JobSpec spec, PrintStream err,
      Progress.Mode mode, Path localImage) throws IOException {
    if (outcome == null) {
      err.println("zcow: job " + spec.getJobId() + " interrupted");
      return Main.EXIT_FAILED;
    }
    if (!outcome.done()) {
      err.println("zcow: job " + spec.getJobId() + " " + outcome.state().name().substring("JOB_STATE_".length())
          .toLowerCase(Locale.ROOT) + ": " + outcome.reason());
      return outcome.refused() ? Main.EXIT_USAGE : Main.EXIT_FAILED;
    }
    if (mode != Progress.Mode.NONE) {
      if (localImage != null && Files.exists(localImage)) {
        long out = Files.size(localImage);
        err.printf(Locale.ROOT, "wrote %s: %s from %s (%.2fx)%n", localImage, Progress.human(out),
            Progress.human(spec.getSourceSize()), (double) spec.getSourceSize() / Math.max(1, out));
      } else {
        err.println("job " + spec.getJobId() + " done");
      }
      if (!coordinator.submitted()) {
        err.println("job " + spec.getJobId() + " was submitted before: followed, not submitted again");
      }
      io.zcow.proto.Progress p = coordinator.lastProgress();
      if (spec.getByDigest()) {
        long read = p.getClustersRead();
        err.printf(Locale.ROOT, "job %s: read %d clusters: %d changed (%s), %d unchanged, on %s%n", spec.getJobId(),
            read, p.getClustersChanged(), Progress.share(p.getClustersChanged(), read), p.getClustersUnchanged(),
            spec.getBackingPath());
      } else if (JobSpecs.isIncremental(spec)) {
        err.printf(Locale.ROOT, "job %s: changed %s, %s of the disk's %s, on %s%n", spec.getJobId(),
            Progress.human(p.getChangedBytesTotal()), Progress.share(p.getChangedBytesTotal(), spec.getVirtualSize()),
            Progress.human(spec.getVirtualSize()), spec.getBackingPath());
      }
      err.printf(Locale.ROOT, "job %s: %s, %s, %s, at most %s in flight (window %d), %s of payload accepted%n",
          spec.getJobId(), count(rangesOf(spec), "range"), count(coordinator.zeroRanges(), "hole range"),
          count(p.getTasksIssued(), "task") + " issued", count(p.getMaxOutstanding(), "range"), coordinator.window(),
          Progress.human(p.getPayloadBytes()));
    }
    return Main.EXIT_OK;
  }

  /** "1 range", "3 ranges". */
  static String count(long n, String noun) {
    return n + " " + noun + (n == 1 ? "" : "s");
  }

  private static int rangesOf(JobSpec spec) {
    return io.zcow.proto.RangeLayout.of(spec).ranges();
  }

  static void removeHook(Thread hook) {
    if (hook == null) {
      return;
    }
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException shuttingDown) {
      // the hook is running
    }
  }

  /** Keeps the latest status for the progress bar and says when a job stalls. */
  static final class ProgressListener implements Coordinator.Listener {
    final AtomicLong guestBytes = new AtomicLong();
    final AtomicLong hostBytes = new AtomicLong();
    final AtomicLong changedTotal = new AtomicLong(); // incremental jobs
    final AtomicLong changedDone = new AtomicLong();
    private final String jobId;
    private final PrintStream err;

    ProgressListener(String jobId, PrintStream err) {
      this.jobId = jobId;
      this.err = err;
    }

    @Override
    public void progress(JobStatus s) {
      guestBytes.set(s.guestBytesDone());
      hostBytes.set(s.hostBytes());
      if (s.incremental()) {
        changedTotal.set(s.changedBytesTotal());
        changedDone.set(s.changedBytesDone());
      }
    }

    @Override
    public void stalled(JobStatus s) {
      err.printf(Locale.ROOT, "%nzcow: job %s has made no progress for %d s (%d of %d ranges done): are workers running?%n",
          jobId, s.sinceProgress().toSeconds(), s.rangesDone(), s.rangesTotal());
    }
  }
}
