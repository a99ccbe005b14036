package io.zcow.coordinator;

import io.zcow.proto.kafka.ChunkLimits;
import io.zcow.proto.kafka.KafkaSettings;

import io.zcow.BadInputException;
import io.zcow.RetriableException;
import io.zcow.proto.Topics;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Creates the topics of zcow where they are missing and makes the worker share group deliver
 * tasks produced before its first member joined. Idempotent: topics that exist are left as they
 * are (their settings are not changed), and the group settings are set again to the same values.
 *
 * <p>Replication: 1 on a single broker, otherwise 3 or the number of brokers if fewer. The
 * chunks topic gets small segments so that the writer's {@code deleteRecords} frees disk soon
 * (the broker deletes whole segments only, never the active one), and a record limit that a batch
 * with a raw cluster of {@link Plan#maxClusterSize()} fits in.
 */
public final class TopicSetup {
  private static final Logger LOG = LoggerFactory.getLogger(TopicSetup.class);

  public static final long CHUNK_SEGMENT_BYTES = 16L << 20;
  /** Index bytes of a chunks segment: room for 8192 offset-index entries. */
  public static final int CHUNK_SEGMENT_INDEX_BYTES = 64 << 10;

  /** Partitions of zcow.tasks as zcow creates it (see {@link Plan#defaults}). */
  public static final int TASK_PARTITIONS = 1;

  static final String SHARE_AUTO_OFFSET_RESET = "share.auto.offset.reset";
  static final String SHARE_LOCK_DURATION = "share.record.lock.duration.ms";
  static final String BROKER_MAX_LOCK_DURATION = "group.share.max.record.lock.duration.ms";
  static final String BROKER_MIN_LOCK_DURATION = "group.share.min.record.lock.duration.ms";

  private TopicSetup() {}

  /**
   * What to create.
   *
   * @param writerGroup whose chunks topic to create ({@link Topics#chunks})
   * @param taskPartitions partitions of zcow.tasks; a share group lets more workers than this
   *     share them
   * @param chunkPartitions partitions of the writer group's chunks topic
   * @param maxClusterSize the largest cluster size jobs of this group use (sizes the record limit)
   * @param lockDuration how long a worker holds a task before it is handed to another; clamped to
   *     the broker's limits
   */
  public record Plan(String writerGroup, int taskPartitions, int chunkPartitions, int maxClusterSize,
      Duration lockDuration) {
    public Plan {
      Topics.chunks(writerGroup); // validates the name
      if (taskPartitions < 1 || chunkPartitions < 1) {
        throw new BadInputException("partitions must be at least 1: tasks " + taskPartitions
            + ", chunks " + chunkPartitions);
      }
      if (maxClusterSize < 512 || maxClusterSize > (2 << 20)) {
        throw new BadInputException("maxClusterSize must be 512 bytes to 2 MiB: " + maxClusterSize);
      }
      if (lockDuration.isNegative() || lockDuration.isZero()) {
        throw new IllegalArgumentException("lockDuration must be positive: " + lockDuration);
      }
    }

    /**
     * Defaults for {@code writerGroup}: 1 task partition, 8 chunk partitions, clusters up to
     * 2 MiB, 60 s locks.
     *
     * <p>One task partition, because a share group hands each partition to one member as long
     * as there are at least as many partitions as members: with 8 partitions and two worker
     * threads, each thread owned four partitions and a job's ranges were dealt by key hash, so one
     * thread could compress every range while the other sat idle (seen on a 2-range job). A
     * single partition is shared by every member, and each takes the next task when it is free.
     * Tasks are a few dozen bytes; one partition carries them easily.
     */
    public static Plan defaults(String writerGroup) {
      return new Plan(writerGroup, TASK_PARTITIONS, 8, 2 << 20, Duration.ofSeconds(60));
    }

    /** The record limit of the chunks topic: the largest record a worker produces (ChunkLimits). */
    public int chunkRecordLimit() {
      return ChunkLimits.recordBytes(maxClusterSize);
    }
  }

  /**
   * What {@link #ensure} found and did.
   *
   * @param created topics this call created (empty on a second run)
   * @param replicationFactor used for topics created now
   * @param lockDurationMs the share group's record lock duration as set
   */
  public record Result(List<String> created, int replicationFactor, long lockDurationMs) {}

  /**
   * Connects with {@code settings} and runs {@link #ensure(Admin, Plan, Duration)}.
   *
   * @throws RetriableException when the cluster does not answer within the settings' call timeout
   */
  public static Result ensure(KafkaSettings settings, Plan plan) {
    Admin admin;
    try {
      admin = Admin.create(settings.admin("zcow-coordinator"));
    } catch (org.apache.kafka.common.KafkaException e) {
      throw new BadInputException("cannot use Kafka at " + settings.bootstrapServers() + ": "
          + rootMessage(e), e);
    }
    try {
      return ensure(admin, plan, settings.callTimeout(), "Kafka at " + settings.bootstrapServers());
    } finally {
      admin.close(Duration.ofSeconds(2));
    }
  }

  /**
   * Creates the missing topics and sets the worker share group's configuration.
   *
   * @param timeout bound on each admin call; an unreachable cluster fails after about this long
   * @throws RetriableException when the cluster does not answer in time or refuses a request
   */
  public static Result ensure(Admin admin, Plan plan, Duration timeout) {
    return ensure(admin, plan, timeout, "the Kafka cluster");
  }

  private static Result ensure(Admin admin, Plan plan, Duration timeout, String where) {
    Collection<Node> nodes = await(admin.describeCluster().nodes(), timeout,
        "reach " + where, where + " is not reachable");
    if (nodes.isEmpty()) {
      throw new RetriableException(where + " has no live broker", null);
    }
    int replication = Math.min(3, nodes.size());
    Set<String> existing = await(admin.listTopics().names(), timeout, "list topics", where + " did not answer");

    List<NewTopic> wanted = new ArrayList<>();
    for (NewTopic t : topics(plan, replication)) {
      if (!existing.contains(t.name())) {
        wanted.add(t);
      }
    }
    List<String> created = new ArrayList<>();
    if (!wanted.isEmpty()) {
      Map<String, KafkaFuture<Void>> results = admin.createTopics(wanted).values();
      for (NewTopic t : wanted) {
        try {
          await(results.get(t.name()), timeout, "create topic " + t.name(), where + " did not answer");
          created.add(t.name());
        } catch (RetriableException e) {
          if (!(e.getCause() instanceof TopicExistsException)) {
            throw e;
          }
          // another coordinator created it meanwhile: what we wanted
        }
      }
    }
    if (existing.contains(Topics.TASKS)) {
      warnOnSplitTasks(admin, timeout, where);
    }
    long lockMs = lockDurationMs(admin, nodes.iterator().next(), plan.lockDuration(), timeout, where);
    ConfigResource group = new ConfigResource(ConfigResource.Type.GROUP, Topics.WORKER_GROUP);
    List<AlterConfigOp> ops = List.of(
        set(SHARE_AUTO_OFFSET_RESET, "earliest"),
        set(SHARE_LOCK_DURATION, Long.toString(lockMs)));
    await(admin.incrementalAlterConfigs(Map.of(group, ops)).all(), timeout,
        "configure share group " + Topics.WORKER_GROUP, where + " did not answer");
    if (!created.isEmpty()) {
      LOG.info("created topics {} (replication factor {})", created, replication);
    }
    return new Result(List.copyOf(created), replication, lockMs);
  }

  /** A zcow.tasks made with several partitions deals tasks by partition, not to whoever is free. */
  private static void warnOnSplitTasks(Admin admin, Duration timeout, String where) {
    var description = await(admin.describeTopics(List.of(Topics.TASKS)).allTopicNames(), timeout,
        "describe " + Topics.TASKS, where + " did not answer").get(Topics.TASKS);
    int partitions = description == null ? TASK_PARTITIONS : description.partitions().size();
    if (partitions > TASK_PARTITIONS) {
      LOG.warn("{} has {} partitions: while workers are fewer than that, each partition's tasks go "
          + "to one worker thread only and others may idle; recreate it with {} partition",
          Topics.TASKS, partitions, TASK_PARTITIONS);
    }
  }

  /** The topics of zcow, with the settings each is created with. */
  static List<NewTopic> topics(Plan plan, int replication) {
    short rf = (short) replication;
    String minIsr = Integer.toString(replication >= 3 ? 2 : 1);
    Map<String, String> jobs = new LinkedHashMap<>();
    jobs.put("cleanup.policy", "compact"); // the latest JobSpec per job id
    jobs.put("min.insync.replicas", minIsr);
    Map<String, String> control = Map.of("min.insync.replicas", minIsr);
    Map<String, String> chunks = new LinkedHashMap<>();
    chunks.put("segment.bytes", Long.toString(CHUNK_SEGMENT_BYTES));
    // A 16 MiB segment of ~1 MiB batches needs a few dozen index entries; the default 10 MiB
    // index and time index files per segment were mostly resident in the broker's page cache.
    chunks.put("segment.index.bytes", Integer.toString(CHUNK_SEGMENT_INDEX_BYTES));
    chunks.put("max.message.bytes", Integer.toString(plan.chunkRecordLimit()));
    chunks.put("min.insync.replicas", minIsr);
    return List.of(
        new NewTopic(Topics.JOBS, 1, rf).configs(jobs),
        new NewTopic(Topics.TASKS, plan.taskPartitions(), rf).configs(control),
        new NewTopic(Topics.EVENTS, 1, rf).configs(control),
        new NewTopic(Topics.chunks(plan.writerGroup()), plan.chunkPartitions(), rf).configs(chunks));
  }

  /**
   * The wanted lock duration within the broker's bounds: the group config is refused outside
   * {@code group.share.min/max.record.lock.duration.ms}.
   */
  private static long lockDurationMs(Admin admin, Node node, Duration wanted, Duration timeout, String where) {
    ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, Integer.toString(node.id()));
    Config config = await(admin.describeConfigs(List.of(broker)).values().get(broker), timeout,
        "read the broker's share group limits", where + " did not answer");
    long max = longValue(config, BROKER_MAX_LOCK_DURATION, 60_000);
    long min = longValue(config, BROKER_MIN_LOCK_DURATION, 15_000);
    long ms = Math.max(min, Math.min(max, wanted.toMillis()));
    if (ms != wanted.toMillis()) {
      LOG.warn("share record lock duration {} ms is outside the broker's {}..{} ms: using {} ms",
          wanted.toMillis(), min, max, ms);
    }
    return ms;
  }

  private static long longValue(Config config, String name, long fallback) {
    ConfigEntry e = config.get(name);
    if (e == null || e.value() == null) {
      return fallback;
    }
    try {
      return Long.parseLong(e.value());
    } catch (NumberFormatException ex) {
      return fallback;
    }
  }

  private static AlterConfigOp set(String name, String value) {
    return new AlterConfigOp(new ConfigEntry(name, value), AlterConfigOp.OpType.SET);
  }

  /**
   * Waits for an admin result. A timeout becomes "{@code onTimeout} within N s"; a broker error
   * becomes "could not {@code what}: reason", with the Kafka exception as cause.
   */
  private static <T> T await(KafkaFuture<T> future, Duration timeout, String what, String onTimeout) {
    try {
      // The admin client gives up on its own after its api timeout; a little slack lets its
      // error (more precise) arrive first.
      return future.get(timeout.toMillis() + 2_000, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RetriableException("interrupted while trying to " + what, e);
    } catch (TimeoutException e) {
      throw new RetriableException(onTimeout + " within " + timeout.toSeconds() + " s", e);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof org.apache.kafka.common.errors.TimeoutException) {
        throw new RetriableException(onTimeout + " within " + timeout.toSeconds() + " s", cause);
      }
      throw new RetriableException("could not " + what + ": " + rootMessage(cause), cause);
    }
  }

  private static String rootMessage(Throwable e) {
    String m = e.getMessage();
    return m == null ? e.getClass().getSimpleName() : m;
  }
}
