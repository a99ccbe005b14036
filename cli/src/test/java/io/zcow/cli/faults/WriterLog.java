package io.zcow.cli.faults;

import java.util.regex.Pattern;

/** Lines of a writer's log the fault scenarios wait for and count (the writer's own wording). */
final class WriterLog {
  /** A term began; group 1 is its epoch. */
  static final Pattern LEADER = Pattern.compile("leader with epoch (\\d+)");
  /** A term ended (deposed) or failed; group 1 is its epoch. */
  static final Pattern TERM_ENDED = Pattern.compile("term of epoch (\\d+) (ended|failed)");
  /** A new leader waits for the fence lock the old one still holds. */
  static final Pattern WAITING_FOR_LOCK = Pattern.compile("waiting for the previous writer to release");
  /** ZooKeeper connection suspended: the writer stops writing. */
  static final Pattern SUSPENDED = Pattern.compile("ZooKeeper SUSPENDED: no more writes");
  /** The Kafka probe went unanswered. */
  static final Pattern KAFKA_SILENT = Pattern.compile("Kafka did not answer");
  /** Kafka out of reach past the bound: the writer leaves the election. */
  static final Pattern GAVE_UP = Pattern.compile("leaving the election for \\d+ ms so a standby takes over");
  /** After giving up, the writer is a candidate again. */
  static final Pattern REJOINED = Pattern.compile("rejoined the election as a candidate");

  private WriterLog() {}
}
