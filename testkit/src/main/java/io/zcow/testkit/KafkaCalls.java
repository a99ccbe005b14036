package io.zcow.testkit;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.common.KafkaFuture;

/** Waits for admin results so that fixtures and tests see plain unchecked failures. */
final class KafkaCalls {

  private KafkaCalls() {}

  /**
   * Waits up to {@link KafkaFixture#ADMIN_TIMEOUT} for {@code future}.
   *
   * @param what what the call does, for the failure message
   * @throws IllegalStateException with the broker's error as cause
   */
  static <T> T await(KafkaFuture<T> future, String what) {
    try {
      return future.get(KafkaFixture.ADMIN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting to " + what, e);
    } catch (ExecutionException e) {
      throw new IllegalStateException("could not " + what + ": " + e.getCause(), e.getCause());
    } catch (TimeoutException e) {
      throw new IllegalStateException(
          "could not " + what + " within " + KafkaFixture.ADMIN_TIMEOUT, e);
    }
  }
}
