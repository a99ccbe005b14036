package io.zcow.cli;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.zcow.BadInputException;
import io.zcow.metrics.MetricsEndpoint;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.writer.Writer;
import io.zcow.writer.WriterConfig;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
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
  @Option(names = "--kafka", required = true, paramLabel = "HOST:PORT", description = "Kafka bootstrap servers.")
  String kafka;

  @Option(names = "--zookeeper", required = true, paramLabel = "HOST:PORT", description = "ZooKeeper connect string.")
  String zookeeper;

  @Option(names = "--target-root", required = true, paramLabel = "DIR",
      description = "Every job's target path is relative to this directory; nothing is written outside it.")
  Path targetRoot;

  @Option(names = "--group", paramLabel = "NAME", description = "Writer group (default: ${DEFAULT-VALUE}).")
  String group = WriterConfig.DEFAULT_GROUP;

  @Option(names = "--checkpoint-interval", paramLabel = "TIME", description = "How often progress is made durable (default: 10s).")
  String checkpointInterval = "10s";

  @Option(names = "--cache-size", paramLabel = "SIZE", description = "The writer's cache budget: the cluster-fill caches of all running jobs together (direct memory; default: 256m).")
  SizeValue cacheSize = new SizeValue(256L << 20);

  @Option(names = "--job-cache", paramLabel = "SIZE", description = "Each running job's slice of the budget; a job that does not fit waits QUEUED, and no task of it is issued until it runs (default: the smaller of 64m and --cache-size).")
  SizeValue jobCache;

  @Option(names = "--range-timeout", paramLabel = "TIME", description = "A range a worker started that makes no progress this long is issued again (default: 5m).")
  String rangeTimeout = "5m";

  @Option(names = "--start-timeout", paramLabel = "TIME", description = "A range no worker has started is issued again once the whole group has been idle this long (a task the share group archived at its delivery limit; default: 2m).")
  String startTimeout = "2m";

  @Option(names = "--zookeeper-session-timeout", paramLabel = "TIME",
      description = "How long a leader that stops answering ZooKeeper (dead, stopped, cut off) keeps leading before a standby takes over (default: 15s; ZooKeeper clamps it to 2..20 of its ticks).")
  String sessionTimeout = "15s";

  @Option(names = "--verify-payloads", description = "Decompress every payload before accepting it.")
  boolean verifyPayloads;

  @Option(names = "--kafka-config", paramLabel = "FILE", description = "Kafka client properties (TLS, SASL) for every client.")
  Path kafkaConfig;

  @Option(names = "--auth-key-file", paramLabel = "FILE", description = "File holding the cluster's record key (at least 32 bytes, e.g. head -c 32 /dev/urandom): records are signed with it, and records without a valid MAC are refused. Every role of the cluster needs the same file.")
  Path authKeyFile;

  @Option(names = "--metrics-port", paramLabel = "P", description = "Serve Prometheus metrics on http://0.0.0.0:P/metrics (default: none).")
  int metricsPort;

  @Override
  public Integer call() throws InterruptedException {
    WriterConfig config = WriterConfig.builder(kafka, zookeeper, targetRoot).group(group)
        .checkpointInterval(duration("--checkpoint-interval", checkpointInterval))
        .rangeTimeout(duration("--range-timeout", rangeTimeout)).startTimeout(duration("--start-timeout", startTimeout))
        .cacheBytes(cacheSize.bytes()).jobCacheBytes(jobCache == null ? 0 : jobCache.bytes()).verifyPayloads(verifyPayloads)
        .kafkaProperties(KafkaSettings.of(kafka, kafkaConfig).extra())
        .auth(RecordAuth.fromFile(authKeyFile)).build();
    if (!Files.isDirectory(targetRoot)) {
      throw new BadInputException("--target-root " + targetRoot + " is not a directory");
    }
    CountDownLatch stopped = new CountDownLatch(1);
    // A dead writer thread has left the election; the process ends with 1 so a supervisor restarts it.
    Duration session = duration("--zookeeper-session-timeout", sessionTimeout);
    if (session.isZero() || session.isNegative()) {
      throw new BadInputException("--zookeeper-session-timeout must be positive: " + sessionTimeout);
    }
    if (metricsPort < 0 || metricsPort > 65535) {
      throw new BadInputException("--metrics-port must be 0 to 65535: " + metricsPort);
    }
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    MetricsEndpoint endpoint;
    try {
      endpoint = metricsPort > 0 ? MetricsEndpoint.serve(metricsPort, registry) : null;
    } catch (UncheckedIOException e) {
      throw new BadInputException("--metrics-port " + metricsPort + " cannot be used: " + e.getCause().getMessage(), e);
    }
    Writer writer = new Writer(config, Clock.systemUTC(), registry).sessionTimeout(session).onDeath(stopped::countDown)
        .start();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      writer.close();
      if (endpoint != null) {
        endpoint.close();
      }
      stopped.countDown();
    }, "zcow-writer-shutdown"));
    System.err.println("zcow writer: group " + group + ", target root " + targetRoot.toAbsolutePath()
        + (metricsPort > 0 ? ", metrics on :" + metricsPort : ""));
    stopped.await();
    if (writer.fatal() != null) {
      System.err.println("zcow: failed: the writer died: " + writer.fatal());
      return Main.EXIT_FAILED;
    }
    return Main.EXIT_OK;
  }

  /** 10s, 5m, 1h, 500ms, or a plain number of seconds. */
  static Duration duration(String option, String text) {
    String t = text.trim().toLowerCase(Locale.ROOT);
    try {
      if (t.endsWith("ms")) {
        return Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
      }
      char unit = t.charAt(t.length() - 1);
      String digits = Character.isDigit(unit) ? t : t.substring(0, t.length() - 1);
      long n = Long.parseLong(digits);
      return switch (unit) {
        case 'h' -> Duration.ofHours(n);
        case 'm' -> Duration.ofMinutes(n);
        case 's' -> Duration.ofSeconds(n);
        default -> {
          if (Character.isDigit(unit)) {
            yield Duration.ofSeconds(n);
          }
          throw new NumberFormatException(text);
        }
      };
    } catch (NumberFormatException | StringIndexOutOfBoundsException e) {
      throw new BadInputException(option + " " + text + " is not a duration (examples: 500ms, 10s, 5m, 1h)");
    }
  }

}
