package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.RetriableException;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Topics;
import java.io.PrintWriter;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.producer.KafkaProducer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/**
 * {@code zcow cancel JOB}: reads the job as {@code zcow status} does ({@link JobLog}) and
 * republishes its JobSpec with state CANCELLED (same created_at_ms) and writer epoch 0 on
 * zcow.jobs: the user's word, which applies over any writer's state. The writer of its group then
 * removes the .part and its checkpoint; workers skip the job's tasks. A finished image is never
 * removed.
 */
@Command(
    name = "cancel",
    mixinStandardHelpOptions = true,
    description = {
      "Cancels JOB: its workers stop, its writer removes the unfinished image (TARGET.part) and its checkpoint. A job that is done already keeps its image and is refused.",
      "",
      "Exit codes: 0 cancellation published (or cancelled already), 1 the cluster could not be reached, 2 bad usage, unknown or finished JOB.",
      ""
    },
    sortOptions = false)
final class CancelCommand implements java.util.concurrent.Callable<Integer> {
  static final String CANCELLED_REASON = "cancelled with zcow cancel";

  @Parameters(index = "0", paramLabel = "JOB", description = "The job to cancel.")
  String jobId;

  @Mixin KafkaOptions kafka;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() throws InterruptedException {
    var settings = kafka.settings();
    JobLog.Job job = JobLog.read(settings).job(jobId)
        .orElseThrow(() -> new BadInputException("no job " + jobId + " on " + kafka.kafka));
    PrintWriter out = spec.commandLine().getOut();
    JobState state = job.state();
    if (state == JobState.JOB_STATE_DONE) {
      throw new BadInputException("job " + jobId + " is done already: its image stays");
    }
    if (state == JobState.JOB_STATE_CANCELLED) {
      out.println("job " + jobId + " is cancelled already");
      out.flush();
      return Main.EXIT_OK;
    }
    // Epoch 0: the user's word, which applies over any writer's state (JobBook).
    JobSpec cancelled = job.spec().toBuilder().setState(JobState.JOB_STATE_CANCELLED).setWriterEpoch(0)
        .setReason(CANCELLED_REASON).build();
    try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(settings.producer("zcow-cancel"))) {
      producer.send(settings.auth().record(Topics.JOBS, jobId, cancelled.toByteArray()))
          .get(settings.callTimeout().toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException | TimeoutException e) {
      throw new RetriableException("cannot publish the cancellation of " + jobId + " on " + Topics.JOBS + ": "
          + (e.getCause() == null ? e : e.getCause()).getMessage(), e);
    }
    out.println("job " + jobId + " cancelled (was " + StatusCommand.name(state) + ")");
    out.flush();
    return Main.EXIT_OK;
  }
}
