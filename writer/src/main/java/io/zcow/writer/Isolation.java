package io.zcow.writer;

import io.zcow.qcow2.FencedWriteException;

/**
 * The loop's rule: nothing about one job — its spec, records, checkpoint, state file or image —
 * may end a term; it fails that job, or refuses that record. Only what concerns the whole writer
 * ends a term: lost leadership (and the writes it refuses), Kafka or ZooKeeper unreachable, an
 * {@link Error} (then the process exits and the standby takes over).
 */
final class Isolation {
  private Isolation() {}

  /** Whether a failure met while working on one job concerns the whole writer. */
  static boolean endsTheTerm(RuntimeException e) {
    return e instanceof DeposedException || e instanceof FencedWriteException;
  }

  /** A failure's reason for the job's FAILED state: its message, or its kind when it has none. */
  static String reason(RuntimeException e) {
    String m = e.getMessage();
    return m == null || m.isBlank() ? e.getClass().getSimpleName() : m;
  }
}
