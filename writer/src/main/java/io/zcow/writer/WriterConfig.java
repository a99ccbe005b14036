package io.zcow.writer;

import io.zcow.BadInputException;
import io.zcow.proto.Topics;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * Everything a writer needs, typed and checked once when it is built ({@code zcow writer}, the
 * embedded cluster, tests): {@code WriterConfig.builder(kafka, zookeeper, root).group(…).build()}.
 * Immutable and thread safe; {@link #toBuilder()} makes a changed copy.
 */
public final class WriterConfig {
  public static final String DEFAULT_GROUP = "default";
  public static final String DEFAULT_ZK_ROOT = "/zcow/writers";
  /** Ranges outstanding per job when its plan names no window. */
  public static final int DEFAULT_WINDOW = 8;
  /** A job's slice of the cache budget unless told otherwise. */
  public static final long DEFAULT_JOB_CACHE = 64L << 20;
  /**
   * A leader that has not reached Kafka this long gives up leadership: longer than a broker
   * restart (a few seconds), short enough that a partitioned leader does not stall its group for
   * minutes.
   */
  public static final Duration DEFAULT_KAFKA_LOSS_TIMEOUT = Duration.ofSeconds(30);

  private final Builder b;

  private WriterConfig(Builder b) {
    this.b = b;
  }

  /** The defaults of {@code zcow writer}: 10 s checkpoints, 256 MiB cache, 5 min range timeout. */
  public static Builder builder(String bootstrapServers, String zookeeper, Path targetRoot) {
    return new Builder(bootstrapServers, zookeeper, targetRoot);
  }

  public Builder toBuilder() {
    return b.copy();
  }

  /** Kafka {@code host:port} list. */
  public String bootstrapServers() {
    return b.bootstrapServers;
  }

  /** ZooKeeper connect string. */
  public String zookeeper() {
    return b.zookeeper;
  }

  /** Every job's target_path is resolved under it; nothing is written elsewhere. */
  public Path targetRoot() {
    return b.targetRoot;
  }

  /** Writer group: one active writer per group, its own chunks topic. */
  public String group() {
    return b.group;
  }

  /** How often the images and the consumed offsets are made durable. */
  public Duration checkpointInterval() {
    return b.checkpointInterval;
  }

  /** The writer's cache budget: the cluster-fill caches of all its open images together. */
  public long cacheBytes() {
    return b.cacheBytes;
  }

  /**
   * Each open image's cluster-fill cache, a fixed slice of {@link #cacheBytes()}: a job that does
   * not fit waits QUEUED, so memory is bounded by configuration whatever the number of jobs.
   */
  public long jobCacheBytes() {
    return b.jobCacheBytes > 0 ? b.jobCacheBytes : Math.min(b.cacheBytes, DEFAULT_JOB_CACHE);
  }

  /** How many jobs run at once: the budget over the slice. */
  public int maxRunningJobs() {
    return (int) Math.max(1, b.cacheBytes / jobCacheBytes());
  }

  /** A started range that makes no progress this long is issued again. */
  public Duration rangeTimeout() {
    return b.rangeTimeout;
  }

  /**
   * An issued range no worker has started is issued again once the whole group has been idle (no
   * range started, no cluster accepted) this long: the share group archives a task at its
   * delivery limit, and nothing else would ever say so. A long queue behind busy workers is not
   * idle, so it re-queues nothing.
   */
  public Duration startTimeout() {
    return b.startTimeout;
  }

  /** Decompress every payload before accepting it. */
  public boolean verifyPayloads() {
    return b.verifyPayloads;
  }

  /** Extra client properties (TLS, SASL) applied to every Kafka client. */
  public Map<String, String> kafkaProperties() {
    return b.kafkaProperties;
  }

  /** Parent of the groups' znodes. */
  public String zkRoot() {
    return b.zkRoot;
  }

  public String jobsTopic() {
    return b.jobsTopic;
  }

  public String tasksTopic() {
    return b.tasksTopic;
  }

  public String eventsTopic() {
    return b.eventsTopic;
  }

  /** A range issued again this many times fails its job. */
  public int maxRequeues() {
    return b.maxRequeues;
  }

  /**
   * How long the leader may go without an answer from Kafka (its probe of the chunks topic's end
   * offsets, every second) before it gives up leadership so a standby takes over ({@link KafkaReach}).
   */
  public Duration kafkaLossTimeout() {
    return b.kafkaLossTimeout;
  }

  /** How often PROGRESS events are sent for each running job. */
  public Duration progressInterval() {
    return b.progressInterval;
  }

  /** Signs what the writer produces and refuses records without a valid MAC ({@link RecordAuth#NONE}: none). */
  public RecordAuth auth() {
    return b.auth;
  }

  public String chunksTopic() {
    return Topics.chunks(b.group);
  }

  /** The group's znode: leader election, epoch, checkpoints. */
  public String groupPath() {
    return b.zkRoot + "/" + b.group;
  }

  /** The Kafka client settings every role shares. */
  KafkaSettings kafka() {
    return new KafkaSettings(b.bootstrapServers, b.kafkaProperties, b.kafkaCallTimeout, b.auth);
  }

  /** Builds a {@link WriterConfig}; {@link #build()} checks every field and names the bad one. */
  public static final class Builder {
    private final String bootstrapServers;
    private final String zookeeper;
    private final Path targetRoot;
    private String group = DEFAULT_GROUP;
    private Duration checkpointInterval = Duration.ofSeconds(10);
    private long cacheBytes = 256L << 20;
    private long jobCacheBytes;
    private Duration rangeTimeout = Duration.ofMinutes(5);
    private Duration startTimeout = Duration.ofMinutes(2);
    private boolean verifyPayloads;
    private Map<String, String> kafkaProperties = Map.of();
    private Duration kafkaCallTimeout = KafkaSettings.DEFAULT_CALL_TIMEOUT;
    private String zkRoot = DEFAULT_ZK_ROOT;
    private String jobsTopic = Topics.JOBS;
    private String tasksTopic = Topics.TASKS;
    private String eventsTopic = Topics.EVENTS;
    private int maxRequeues = 5;
    private Duration progressInterval = Duration.ofSeconds(2);
    private Duration kafkaLossTimeout = DEFAULT_KAFKA_LOSS_TIMEOUT;
    private RecordAuth auth = RecordAuth.NONE;

    private Builder(String bootstrapServers, String zookeeper, Path targetRoot) {
      this.bootstrapServers = Objects.requireNonNull(bootstrapServers, "bootstrapServers");
      this.zookeeper = Objects.requireNonNull(zookeeper, "zookeeper");
      this.targetRoot = Objects.requireNonNull(targetRoot, "targetRoot");
    }

    private Builder copy() {
      Builder c = new Builder(bootstrapServers, zookeeper, targetRoot);
      c.group = group;
      c.checkpointInterval = checkpointInterval;
      c.cacheBytes = cacheBytes;
      c.jobCacheBytes = jobCacheBytes;
      c.rangeTimeout = rangeTimeout;
      c.startTimeout = startTimeout;
      c.verifyPayloads = verifyPayloads;
      c.kafkaProperties = kafkaProperties;
      c.kafkaCallTimeout = kafkaCallTimeout;
      c.zkRoot = zkRoot;
      c.jobsTopic = jobsTopic;
      c.tasksTopic = tasksTopic;
      c.eventsTopic = eventsTopic;
      c.maxRequeues = maxRequeues;
      c.progressInterval = progressInterval;
      c.kafkaLossTimeout = kafkaLossTimeout;
      c.auth = auth;
      return c;
    }

    public Builder group(String g) {
      this.group = g;
      return this;
    }

    public Builder checkpointInterval(Duration d) {
      this.checkpointInterval = d;
      return this;
    }

    public Builder cacheBytes(long bytes) {
      this.cacheBytes = bytes;
      return this;
    }

    /** Each job's slice of the cache budget; 0 for the default (the smaller of 64 MiB and the budget). */
    public Builder jobCacheBytes(long bytes) {
      this.jobCacheBytes = bytes;
      return this;
    }

    public Builder rangeTimeout(Duration d) {
      this.rangeTimeout = d;
      return this;
    }

    public Builder startTimeout(Duration d) {
      this.startTimeout = d;
      return this;
    }

    public Builder verifyPayloads(boolean verify) {
      this.verifyPayloads = verify;
      return this;
    }

    public Builder kafkaProperties(Map<String, String> props) {
      this.kafkaProperties = Map.copyOf(props);
      return this;
    }

    /** The longest an admin call to the cluster may wait (the CLI's --connect-timeout). */
    public Builder kafkaCallTimeout(Duration d) {
      if (d == null || d.isNegative() || d.isZero()) {
        throw new BadInputException("the Kafka call timeout must be positive: " + d);
      }
      this.kafkaCallTimeout = d;
      return this;
    }

    public Builder zkRoot(String root) {
      this.zkRoot = root;
      return this;
    }

    public Builder topics(String jobs, String tasks, String events) {
      this.jobsTopic = jobs;
      this.tasksTopic = tasks;
      this.eventsTopic = events;
      return this;
    }

    public Builder maxRequeues(int n) {
      this.maxRequeues = n;
      return this;
    }

    public Builder progressInterval(Duration d) {
      this.progressInterval = d;
      return this;
    }

    /** See {@link WriterConfig#kafkaLossTimeout()}. */
    public Builder kafkaLossTimeout(Duration d) {
      this.kafkaLossTimeout = d;
      return this;
    }

    public Builder auth(RecordAuth recordAuth) {
      this.auth = Objects.requireNonNull(recordAuth, "auth");
      return this;
    }

    /** @throws BadInputException naming the first field that is out of range */
    public WriterConfig build() {
      Topics.chunks(group); // refuses names Kafka would refuse
      positive(checkpointInterval, "checkpoint interval");
      positive(rangeTimeout, "range timeout");
      positive(startTimeout, "start timeout");
      positive(progressInterval, "progress interval");
      positive(kafkaLossTimeout, "Kafka loss timeout");
      if (cacheBytes < 1 << 20) {
        throw new BadInputException("cache size must be at least 1 MiB: " + cacheBytes);
      }
      if (jobCacheBytes != 0 && (jobCacheBytes < 1 << 20 || jobCacheBytes > cacheBytes)) {
        throw new BadInputException("a job's cache must be 1 MiB to the cache size (" + cacheBytes + "): "
            + jobCacheBytes);
      }
      if (maxRequeues < 1) {
        throw new BadInputException("maxRequeues must be at least 1: " + maxRequeues);
      }
      return new WriterConfig(copy());
    }

    private static void positive(Duration d, String what) {
      if (d == null || d.isNegative() || d.isZero()) {
        throw new BadInputException(what + " must be positive: " + d);
      }
    }
  }
}
