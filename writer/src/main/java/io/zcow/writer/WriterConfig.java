package io.zcow.writer;

import io.zcow.BadInputException;
import io.zcow.proto.Topics;
import io.zcow.proto.kafka.RecordAuth;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * Everything a writer needs, typed and checked once (built by {@code zcow writer}).
 *
 * @param bootstrapServers Kafka {@code host:port} list
 * @param zookeeper ZooKeeper connect string
 * @param targetRoot every job's target_path is resolved under it; nothing is written elsewhere
 * @param group writer group: one active writer per group, its own chunks topic
 * @param checkpointInterval how often the image and the consumed offsets are made durable
 * @param cacheBytes memory of the cluster-fill cache of each open image
 * @param rangeTimeout a submitted range that makes no progress this long is queued again
 * @param verifyPayloads decompress every payload before accepting it
 * @param kafkaProperties extra client properties (TLS, SASL) applied to every client
 * @param metricsPort Prometheus text on http://0.0.0.0:PORT/metrics; 0 for none
 * @param zkRoot parent of the groups' znodes ({@code /zcow/writers})
 * @param jobsTopic JobSpecs (compacted)
 * @param tasksTopic RangeTasks (re-queues go here)
 * @param eventsTopic JobEvents
 * @param maxRequeues a range re-queued this many times fails its job
 * @param progressInterval how often PROGRESS events are sent for each running job
 * @param auth signs what the writer produces and refuses records without a valid MAC ({@link
 *     RecordAuth#NONE}: no key, nothing checked)
 */
public record WriterConfig(
    String bootstrapServers,
    String zookeeper,
    Path targetRoot,
    String group,
    Duration checkpointInterval,
    long cacheBytes,
    Duration rangeTimeout,
    boolean verifyPayloads,
    Map<String, String> kafkaProperties,
    int metricsPort,
    String zkRoot,
    String jobsTopic,
    String tasksTopic,
    String eventsTopic,
    int maxRequeues,
    Duration progressInterval,
    RecordAuth auth) {

  public static final String DEFAULT_GROUP = "default";
  public static final String DEFAULT_ZK_ROOT = "/zcow/writers";

  public WriterConfig {
    Objects.requireNonNull(bootstrapServers, "bootstrapServers");
    Objects.requireNonNull(zookeeper, "zookeeper");
    Objects.requireNonNull(targetRoot, "targetRoot");
    Topics.chunks(group); // refuses names Kafka would refuse
    positive(checkpointInterval, "checkpoint interval");
    positive(rangeTimeout, "range timeout");
    positive(progressInterval, "progress interval");
    if (maxRequeues < 1) {
      throw new BadInputException("maxRequeues must be at least 1: " + maxRequeues);
    }
    if (metricsPort < 0 || metricsPort > 65535) {
      throw new BadInputException("metrics port must be 0..65535: " + metricsPort);
    }
    kafkaProperties = Map.copyOf(kafkaProperties);
    Objects.requireNonNull(auth, "auth");
  }

  /** The defaults of {@code zcow writer}: 10 s checkpoints, 256 MiB cache, 5 min range timeout. */
  public static WriterConfig defaults(String bootstrapServers, String zookeeper, Path targetRoot) {
    return new WriterConfig(bootstrapServers, zookeeper, targetRoot, DEFAULT_GROUP, Duration.ofSeconds(10),
        256L << 20, Duration.ofMinutes(5), false, Map.of(), 0, DEFAULT_ZK_ROOT, Topics.JOBS, Topics.TASKS,
        Topics.EVENTS, 5, Duration.ofSeconds(2), RecordAuth.NONE);
  }

  public String chunksTopic() {
    return Topics.chunks(group);
  }

  /** The group's znode: leader election, epoch, checkpoints. */
  public String groupPath() {
    return zkRoot + "/" + group;
  }

  public WriterConfig withGroup(String g) {
    return new WriterConfig(bootstrapServers, zookeeper, targetRoot, g, checkpointInterval, cacheBytes, rangeTimeout,
        verifyPayloads, kafkaProperties, metricsPort, zkRoot, jobsTopic, tasksTopic, eventsTopic, maxRequeues,
        progressInterval, auth);
  }

  public WriterConfig withTimes(Duration checkpoint, Duration rangeTimeoutValue, Duration progress) {
    return new WriterConfig(bootstrapServers, zookeeper, targetRoot, group, checkpoint, cacheBytes, rangeTimeoutValue,
        verifyPayloads, kafkaProperties, metricsPort, zkRoot, jobsTopic, tasksTopic, eventsTopic, maxRequeues,
        progress, auth);
  }

  public WriterConfig withTopics(String jobs, String tasks, String events) {
    return new WriterConfig(bootstrapServers, zookeeper, targetRoot, group, checkpointInterval, cacheBytes,
        rangeTimeout, verifyPayloads, kafkaProperties, metricsPort, zkRoot, jobs, tasks, events, maxRequeues,
        progressInterval, auth);
  }

  public WriterConfig withOptions(long cache, boolean verify, Map<String, String> kafka, int metrics) {
    return new WriterConfig(bootstrapServers, zookeeper, targetRoot, group, checkpointInterval, cache, rangeTimeout,
        verify, kafka, metrics, zkRoot, jobsTopic, tasksTopic, eventsTopic, maxRequeues, progressInterval, auth);
  }

  public WriterConfig withZkRoot(String root) {
    return new WriterConfig(bootstrapServers, zookeeper, targetRoot, group, checkpointInterval, cacheBytes,
        rangeTimeout, verifyPayloads, kafkaProperties, metricsPort, root, jobsTopic, tasksTopic, eventsTopic,
        maxRequeues, progressInterval, auth);
  }

  /** The same writer with records signed and checked under {@code recordAuth}. */
  public WriterConfig withAuth(RecordAuth recordAuth) {
    return new WriterConfig(bootstrapServers, zookeeper, targetRoot, group, checkpointInterval, cacheBytes,
        rangeTimeout, verifyPayloads, kafkaProperties, metricsPort, zkRoot, jobsTopic, tasksTopic, eventsTopic,
        maxRequeues, progressInterval, recordAuth);
  }

  private static void positive(Duration d, String what) {
    if (d == null || d.isNegative() || d.isZero()) {
      throw new BadInputException(what + " must be positive: " + d);
    }
  }
}
