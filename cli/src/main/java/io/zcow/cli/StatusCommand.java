package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpecs;
import io.zcow.proto.JobState;
import java.io.PrintWriter;
import java.time.Clock;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/**
 * {@code zcow status [JOB]}: what zcow.jobs and zcow.events say about the jobs of a cluster: the
 * state is the JobSpec's (the writer publishes the lifecycle there), progress comes from events.
 */
@Command(
    name = "status",
    mixinStandardHelpOptions = true,
    description = {
      "Shows every job of the cluster (or only JOB): its state, how many ranges and bytes are done, the rate, and whether it is stalled (no event for " + StatusCommand.STALLED_MINUTES + " minutes while not finished).",
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

  /** Tests replace it to age events. */
  static Clock clock = Clock.systemUTC();

  @Override
  public Integer call() {
    JobLog log = JobLog.read(kafka.settings());
    PrintWriter out = spec.commandLine().getOut();
    long now = clock.millis();
    if (jobId != null) {
      JobLog.Job job = log.job(jobId).orElseThrow(() -> new BadInputException("no job " + jobId + " on " + kafka.kafka));
      out.println(line(job, now));
    } else if (log.jobs().isEmpty()) {
      out.println("no jobs");
    } else {
      log.jobs().values().forEach(j -> out.println(line(j, now)));
    }
    out.flush();
    if (log.unauthenticated() > 0) {
      java.io.PrintWriter err = spec.commandLine().getErr();
      err.println("zcow: " + log.unauthenticated() + " records without a valid MAC were ignored (another key, or"
          + " forged)");
      err.flush();
    }
    return Main.EXIT_OK;
  }

  static String line(JobLog.Job job, long nowMs) {
    StringBuilder s = new StringBuilder();
    JobState state = job.state();
    s.append(job.spec().getJobId()).append("  ").append(name(state));
    JobEvent last = job.lastProgress();
    if (last != null) {
      var p = last.getProgress();
      s.append(String.format(Locale.ROOT, "  ranges %d/%d  guest %s of %s  image %s", p.getRangesDone(),
          p.getRangesTotal(), Progress.human(p.getGuestBytesDone()), Progress.human(job.spec().getVirtualSize()),
          Progress.human(p.getHostBytes())));
      JobEvent first = job.firstProgress();
      long ms = last.getTimeMs() - first.getTimeMs();
      long bytes = p.getGuestBytesDone() - first.getProgress().getGuestBytesDone();
      if (ms > 0 && bytes > 0) {
        s.append("  ").append(Progress.human(bytes * 1000 / ms)).append("/s");
      }
    } else {
      s.append("  no progress yet");
    }
    if ((state == JobState.JOB_STATE_FAILED || state == JobState.JOB_STATE_QUEUED) && !job.spec().getReason().isEmpty()) {
      s.append("  (").append(job.spec().getReason()).append(')');
    }
    Duration idle = Duration.ofMillis(nowMs - job.lastSeenMs());
    if (!JobSpecs.isTerminal(state) && state != JobState.JOB_STATE_QUEUED && idle.toMinutes() >= STALLED_MINUTES) {
      s.append("  stalled: nothing for ").append(idle.toMinutes()).append(" min");
    }
    return s.toString();
  }

  static String name(JobState s) {
    return s.name().substring("JOB_STATE_".length());
  }
}
