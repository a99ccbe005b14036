package io.zcow.worker.kafka;

import io.zcow.proto.Topics;
import java.util.Objects;

/**
 * The topics and share group a worker uses: {@link #defaults()} in production; tests give each
 * case topics of its own on a shared broker. The chunks topic comes from each job's writer group
 * ({@link Topics#chunks}).
 */
public record WorkerTopics(String jobs, String tasks, String events, String workerGroup) {
  public WorkerTopics {
    Objects.requireNonNull(jobs, "jobs");
    Objects.requireNonNull(tasks, "tasks");
    Objects.requireNonNull(events, "events");
    Objects.requireNonNull(workerGroup, "workerGroup");
  }

  public static WorkerTopics defaults() {
    return new WorkerTopics(Topics.JOBS, Topics.TASKS, Topics.EVENTS, Topics.WORKER_GROUP);
  }
}
