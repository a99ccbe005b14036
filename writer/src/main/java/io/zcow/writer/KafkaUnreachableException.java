package io.zcow.writer;

/**
 * The leader has not reached Kafka for longer than its bound ({@link KafkaReach}): the term ends
 * (between batches, after a last checkpoint attempt, like any deposition) and the writer leaves the
 * election for a pause so a standby takes over; it then rejoins as a candidate.
 */
public final class KafkaUnreachableException extends DeposedException {
  public KafkaUnreachableException(String message) {
    super(message, null);
  }
}
