package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpecs;
import io.zcow.proto.JobState;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code zcow status [JOB]}: what zcow.jobs and zcow.events say about the jobs of a cluster: the
 * state is the JobSpec's (the writer publishes the lifecycle there), progress comes from events.
 */
@Command(
    name = "status",
    mixinStandardHelpOptions = true,
    description = {
      "Shows every job of the cluster (or only JOB): its state, how many ranges and bytes are done, the rate, and whether it is stalled (no event for " + StatusCommand.STALLED_MINUTES + " minutes while not finished). An incremental job also shows its changed bytes and the share of the disk they are.",
      "",
      "--output json prints one JSON object for scripts and monitoring (byte counts and times in bytes and epoch milliseconds; null where text says nothing).",
      "",
      "Exit codes: 0 shown, 1 the cluster could not be read, 2 bad usage or unknown JOB.",
      ""
    },
    sortOptions = false)
final class StatusCommand implements Callable<Integer> {
  /** Writers send PROGRESS every few seconds while a job moves; minutes of silence mean nothing does. */
  static final int STALLED_MINUTES = 5;

  @Parameters(index = "0", arity = "0..1", paramLabel = "JOB", description = "Only this job.")
  String jobId;

  @Mixin KafkaOptions kafka;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  private final Environment env;

  StatusCommand(Environment env) {
    this.env = env;
  }

  /** What {@code --output} prints. */
  enum Output { TEXT, JSON }

  @Option(names = "--output", paramLabel = "FORMAT", description = "text (a line per job) or json (one object: {\"jobs\": [...], \"unauthenticated_records\": N}) (default: text).")
  Output output = Output.TEXT;

  @Override
  public Integer call() {
    boolean json = output == Output.JSON;
    JobLog log = JobLog.read(kafka.settings());
    PrintWriter out = spec.commandLine().getOut();
    long now = env.clock().millis();
    List<JobView> views;
    if (jobId != null) {
      JobLog.Job job = log.job(jobId).orElseThrow(() -> new BadInputException("no job " + jobId + " on " + kafka.kafka));
      views = List.of(JobView.of(job, now));
    } else {
      views = log.jobs().values().stream().map(j -> JobView.of(j, now)).toList();
    }
    if (json) {
      out.println(json(views, log.unauthenticated()));
    } else if (views.isEmpty()) {
      out.println("no jobs");
    } else {
      views.forEach(v -> out.println(v.line()));
    }
    out.flush();
    if (kafka.client.insecure) {
      java.io.PrintWriter err = spec.commandLine().getErr();
      err.println("zcow: --insecure: records are not authenticated; what is shown may be forged");
      err.flush();
    }
    if (log.unauthenticated() > 0) {
      java.io.PrintWriter err = spec.commandLine().getErr();
      err.println("zcow: " + log.unauthenticated() + " records without a valid MAC were ignored (another key, or"
          + " forged)");
      err.flush();
    }
    return Main.EXIT_OK;
  }

  /**
   * What status says of one job, computed once for both outputs. Rate and stall are absent (-1)
   * when there is nothing to say: no two PROGRESS events apart, or a job that is not silent.
   */
  record JobView(String jobId, JobState state, boolean hasProgress, long rangesDone, long rangesTotal,
      long guestBytesDone, long virtualSize, long imageBytes, long bytesPerSecond, String reason,
      long stalledMinutes, long lastSeenMs, long changedBytesTotal, long changedBytesDone, boolean byDigest,
      long clustersRead, long clustersChanged, long clustersUnchanged) {
    static JobView of(JobLog.Job job, long nowMs) {
      JobState state = job.state();
      JobEvent last = job.lastProgress();
      long done = 0;
      long total = 0;
      long guest = 0;
      long image = 0;
      long rate = -1;
      long changedTotal = 0;
      long changedDone = 0;
      long read = 0;
      long changed = 0;
      long unchanged = 0;
      if (last != null) {
        var p = last.getProgress();
        done = p.getRangesDone();
        total = p.getRangesTotal();
        guest = p.getGuestBytesDone();
        image = p.getHostBytes();
        changedTotal = p.getChangedBytesTotal();
        changedDone = p.getChangedBytesDone();
        read = p.getClustersRead();
        changed = p.getClustersChanged();
        unchanged = p.getClustersUnchanged();
        JobEvent first = job.firstProgress();
        long ms = last.getTimeMs() - first.getTimeMs();
        // An incremental job moves its changed bytes; its unchanged ones are settled without work.
        long bytes = changedTotal > 0 ? changedDone - first.getProgress().getChangedBytesDone()
            : guest - first.getProgress().getGuestBytesDone();
        if (ms > 0 && bytes > 0) {
          rate = bytes * 1000 / ms;
        }
      }
      boolean explains = state == JobState.JOB_STATE_FAILED || state == JobState.JOB_STATE_QUEUED;
      Duration idle = Duration.ofMillis(nowMs - job.lastSeenMs());
      boolean stalled = !JobSpecs.isTerminal(state) && state != JobState.JOB_STATE_QUEUED
          && idle.toMinutes() >= STALLED_MINUTES;
      return new JobView(job.spec().getJobId(), state, last != null, done, total, guest, job.spec().getVirtualSize(),
          image, rate, explains ? job.spec().getReason() : "", stalled ? idle.toMinutes() : -1, job.lastSeenMs(),
          changedTotal, changedDone, job.spec().getByDigest(), read, changed, unchanged);
    }

    String line() {
      StringBuilder s = new StringBuilder();
      s.append(jobId).append("  ").append(name(state));
      if (hasProgress) {
        s.append(String.format(Locale.ROOT, "  ranges %d/%d  guest %s of %s  image %s", rangesDone, rangesTotal,
            Progress.human(guestBytesDone), Progress.human(virtualSize), Progress.human(imageBytes)));
        if (changedBytesTotal > 0) {
          s.append(String.format(Locale.ROOT, "  changed %s of %s (%s of the disk)", Progress.human(changedBytesDone),
              Progress.human(changedBytesTotal), Progress.share(changedBytesTotal, virtualSize)));
        }
        if (byDigest) {
          s.append(String.format(Locale.ROOT, "  clusters read %d, changed %d, skipped %d", clustersRead,
              clustersChanged, clustersUnchanged));
        }
        if (bytesPerSecond >= 0) {
          s.append("  ").append(Progress.human(bytesPerSecond)).append("/s");
        }
      } else {
        s.append("  no progress yet");
      }
      if (!reason.isEmpty()) {
        s.append("  (").append(reason).append(')');
      }
      if (stalledMinutes >= 0) {
        s.append("  stalled: nothing for ").append(stalledMinutes).append(" min");
      }
      return s.toString();
    }

    String json() {
      return "{\"job_id\":" + Json.string(jobId) + ",\"state\":" + Json.string(name(state))
          + ",\"ranges_done\":" + rangesDone + ",\"ranges_total\":" + rangesTotal
          + ",\"guest_bytes_done\":" + guestBytesDone + ",\"virtual_size\":" + virtualSize
          + ",\"image_bytes\":" + imageBytes
          + ",\"changed_bytes_total\":" + changedBytesTotal + ",\"changed_bytes_done\":" + changedBytesDone
          + (byDigest ? ",\"clusters_read\":" + clustersRead + ",\"clusters_changed\":" + clustersChanged
              + ",\"clusters_skipped\":" + clustersUnchanged : "")
          + ",\"bytes_per_second\":" + (bytesPerSecond >= 0 ? Long.toString(bytesPerSecond) : "null")
          + ",\"reason\":" + (reason.isEmpty() ? "null" : Json.string(reason))
          + ",\"stalled_minutes\":" + (stalledMinutes >= 0 ? Long.toString(stalledMinutes) : "null")
          + ",\"last_seen_ms\":" + lastSeenMs + "}";
    }
  }

  static String json(List<JobView> views, long unauthenticated) {
    StringBuilder s = new StringBuilder("{\"jobs\":[");
    for (int i = 0; i < views.size(); i++) {
      s.append(i == 0 ? "" : ",").append(views.get(i).json());
    }
    return s.append("],\"unauthenticated_records\":").append(unauthenticated).append('}').toString();
  }

  static String name(JobState s) {
    return s.name().substring("JOB_STATE_".length());
  }
}
