package io.zcow.proto;

/**
 * The Kafka topics and groups of zcow. Every role names them through these constants, so a
 * worker, a writer and a coordinator built from the same tree always meet on the same topics.
 */
public final class Topics {
  /** JobSpecs, compacted, keyed by job id: the latest spec of each job (a CANCELLED one included). */
  public static final String JOBS = "zcow.jobs";
  /** RangeTasks, keyed "job/range", consumed by the share group {@link #WORKER_GROUP}. */
  public static final String TASKS = "zcow.tasks";
  /** JobEvents, keyed by job id: state changes, progress, refused tasks and records. */
  public static final String EVENTS = "zcow.events";
  /** The share group every worker joins to take tasks from {@link #TASKS}. */
  public static final String WORKER_GROUP = "zcow-workers";

  private static final String CHUNKS_PREFIX = "zcow.chunks.";

  private Topics() {}

  /**
   * The chunks topic of a writer group: each group has its own, since a writer trims what it has
   * consumed and would otherwise delete another group's data.
   *
   * @throws IllegalArgumentException when the group name is empty or has characters Kafka refuses
   *     in a topic name (legal: ASCII letters, digits, '.', '_', '-')
   */
  public static String chunks(String writerGroup) {
    if (writerGroup == null || writerGroup.isEmpty()) {
      throw new IllegalArgumentException("writerGroup must not be empty");
    }
    for (int i = 0; i < writerGroup.length(); i++) {
      char c = writerGroup.charAt(i);
      boolean legal = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
          || c == '.' || c == '_' || c == '-';
      if (!legal) {
        throw new IllegalArgumentException("writerGroup must use only letters, digits, '.', '_' and '-': " + writerGroup);
      }
    }
    String topic = CHUNKS_PREFIX + writerGroup;
    if (topic.length() > 249) {
      throw new IllegalArgumentException("writerGroup is too long for a topic name (249 characters at most): " + writerGroup);
    }
    return topic;
  }
}
