package io.zcow.worker.kafka;

import io.zcow.proto.JobSpec;
import java.time.Duration;
import java.util.Optional;

/** The jobs as a task loop sees them: a {@link JobDirectory} in production. Thread safe. */
interface JobView {
  /**
   * Waits until everything published to the jobs topic before this call has been read.
   *
   * @throws io.zcow.RetriableException when that takes longer than {@code timeout}
   */
  void awaitCaughtUp(Duration timeout);

  /** The latest spec of {@code jobId} read so far. */
  Optional<JobSpec> get(String jobId);

  /** The spec of {@code jobId} after reading the jobs topic up to its end as of this call. */
  default Optional<JobSpec> refreshed(String jobId, Duration timeout) {
    awaitCaughtUp(timeout);
    return get(jobId);
  }

  /**
   * Whether a running job has ranges issued that no worker has started, as its writer reported
   * lately: work a healthy idle share consumer would be given.
   */
  boolean workWaiting();
}
