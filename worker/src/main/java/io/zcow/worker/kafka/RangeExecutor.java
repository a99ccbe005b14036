package io.zcow.worker.kafka;

import io.zcow.worker.kafka.RangeRunner.Outcome;
import io.zcow.worker.kafka.RangeRunner.Work;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/** Where a task loop has its ranges run: a {@link RangeRunner} in production, a fake in unit tests. */
interface RangeExecutor {
  /** Queues a range; ranges run one after another, in submission order. */
  CompletableFuture<Outcome> submit(Work w);

  /** Lets the range at work finish (within {@code wait}), then frees what the executor holds. */
  void close(Duration wait);
}
