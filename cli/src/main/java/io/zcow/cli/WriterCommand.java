package io.zcow.cli;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.zcow.BadInputException;
import io.zcow.metrics.MetricsEndpoint;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.writer.Writer;
import io.zcow.writer.WriterConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code zcow writer}: the writer of a writer group (one active, the others standing by). */
@Command(
    name = "writer",
    mixinStandardHelpOptions = true,
    description = {
      "Runs a writer of a writer group: consumes the group's chunks topic (zcow.chunks.GROUP) and builds each job's qcow2 image under --target-root. One writer per group is active (elected through ZooKeeper); the others wait and take over from the last checkpoint.",
      "",
      "Runs until stopped (SIGTERM, Ctrl-C); a stopped leader finishes nothing, the next one resumes.",
      ""
    },
    sortOptions = false)
final class WriterCommand implements Callable<Integer> {
  @Mixin KafkaOptions kafka = new KafkaOptions();

  @Option(names = "--zookeeper", required = true, paramLabel = "HOST:PORT", description = "ZooKeeper connect string.")
  String zookeeper;

  @Option(names = "--target-root", required = true, paramLabel = "DIR",
      description = "Every job's target path is relative to this directory; nothing is written outside it.")
  Path targetRoot;

  @Option(names = "--group", paramLabel = "NAME", description = "Writer group (default: ${DEFAULT-VALUE}).")
  String group = WriterConfig.DEFAULT_GROUP;

  @Option(names = "--checkpoint-interval", paramLabel = "TIME", description = "How often progress is made durable (default: 10s).")
  Duration checkpointInterval = Duration.ofSeconds(10);

  @Option(names = "--cache-size", paramLabel = "SIZE", description = "The writer's cache budget: the cluster-fill caches of all running jobs together (direct memory; default: 256m).")
  SizeValue cacheSize = new SizeValue(256L << 20);

  @Option(names = "--job-cache", paramLabel = "SIZE", description = "Each running job's slice of the budget; a job that does not fit waits QUEUED, and no task of it is issued until it runs (default: the smaller of 64m and --cache-size).")
  SizeValue jobCache;

  @Option(names = "--range-timeout", paramLabel = "TIME", description = "A range a worker started that makes no progress this long is issued again (default: 5m).")
  Duration rangeTimeout = Duration.ofMinutes(5);

  @Option(names = "--start-timeout", paramLabel = "TIME", description = "A range no worker has started is issued again once the whole group has been idle this long (a task the share group archived at its delivery limit; default: 2m).")
  Duration startTimeout = Duration.ofMinutes(2);

  @Option(names = "--zookeeper-session-timeout", paramLabel = "TIME",
      description = "How long a leader that stops answering ZooKeeper (dead, stopped, cut off) keeps leading before a standby takes over (default: 15s; ZooKeeper clamps it to 2..20 of its ticks).")
  Duration sessionTimeout = Duration.ofSeconds(15);

  @Option(names = "--kafka-loss-timeout", paramLabel = "TIME",
      description = "A leader that gets no answer from Kafka this long (it probes every second) gives up leadership so a standby takes over, and rejoins as a candidate 2 s later (default: 30s).")
  Duration kafkaLossTimeout = WriterConfig.DEFAULT_KAFKA_LOSS_TIMEOUT;

  @Option(names = "--verify-payloads", description = "Decompress every payload before accepting it.")
  boolean verifyPayloads;

  @Mixin MetricsOptions metrics = new MetricsOptions();

  @Override
  public Integer call() throws InterruptedException {
    for (var d : java.util.Map.of("--checkpoint-interval", checkpointInterval, "--range-timeout", rangeTimeout,
        "--start-timeout", startTimeout, "--zookeeper-session-timeout", sessionTimeout, "--kafka-loss-timeout", kafkaLossTimeout).entrySet()) {
      if (d.getValue().isZero()) {
        throw new BadInputException(d.getKey() + " must be positive");
      }
    }
    KafkaSettings settings = kafka.settings();
    WriterConfig config = WriterConfig.builder(kafka.kafka, zookeeper, targetRoot).group(group)
        .checkpointInterval(checkpointInterval).rangeTimeout(rangeTimeout).startTimeout(startTimeout).kafkaLossTimeout(kafkaLossTimeout)
        .cacheBytes(cacheSize.bytes()).jobCacheBytes(jobCache == null ? 0 : jobCache.bytes()).verifyPayloads(verifyPayloads)
        .kafkaProperties(settings.extra()).kafkaCallTimeout(settings.callTimeout()).auth(settings.auth()).build();
    if (!Files.isDirectory(targetRoot)) {
      throw new BadInputException("--target-root " + targetRoot + " is not a directory");
    }
    CountDownLatch stopped = new CountDownLatch(1);
    // A dead writer thread has left the election; the process ends with 1 so a supervisor restarts it.
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    kafka.client.meterInsecure(registry);
    MetricsEndpoint endpoint = metrics.serve(registry);
    Writer writer = new Writer(config, Clock.systemUTC(), registry).sessionTimeout(sessionTimeout).onDeath(stopped::countDown)
        .start();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      writer.close();
      if (endpoint != null) {
        endpoint.close();
      }
      stopped.countDown();
    }, "zcow-writer-shutdown"));
    System.err.println("zcow writer: group " + group + ", target root " + targetRoot.toAbsolutePath()
        + (endpoint != null ? ", metrics on :" + endpoint.port() : ""));
    stopped.await();
    if (writer.fatal() != null) {
      System.err.println("zcow: failed: the writer died: " + writer.fatal());
      return Main.EXIT_FAILED;
    }
    return Main.EXIT_OK;
  }
}
