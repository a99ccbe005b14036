package io.zcow.cli;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.zcow.BadInputException;
import io.zcow.metrics.MetricsEndpoint;
import io.zcow.source.SourceCache;
import io.zcow.source.nbd.NbdUri;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.worker.kafka.SourcePolicy;
import io.zcow.worker.kafka.Worker;
import io.zcow.worker.kafka.WorkerConfig;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code zcow worker}: reads and compresses ranges for any job on a Kafka cluster until stopped. */
@Command(
    name = "worker",
    mixinStandardHelpOptions = true,
    description = {
      "Joins the zcow cluster at --kafka as a worker: takes range tasks from the share group zcow-workers (topic zcow.tasks), reads and compresses each range of the job's source, and sends the compressed clusters to the job's writer group (topic zcow.chunks.GROUP).",
      "",
      "A task whose source this host cannot see, or may not read (outside every --source-allow prefix), is handed back for another worker and reported on zcow.events. Runs until SIGTERM or Ctrl-C; a range in progress then gets 30 s to finish, or is handed back.",
      "",
      "Exit codes: 0 stopped, 1 failed (e.g. Kafka unreachable), 2 bad usage.",
      ""
    },
    sortOptions = false)
final class WorkerCommand implements Callable<Integer> {
  private static final Logger LOG = LoggerFactory.getLogger(WorkerCommand.class);

  @picocli.CommandLine.Mixin KafkaOptions kafka = new KafkaOptions();

  @Option(names = "--threads", paramLabel = "N", description = "Ranges compressed at once (default: the number of cores, ${DEFAULT-VALUE}).")
  int threads = Runtime.getRuntime().availableProcessors();

  @Option(names = "--source-allow", paramLabel = "PREFIX|NBD-URI",
      description = "Absolute path of a directory or device this worker may read under, or an NBD export it may read (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH; matched on host, port and export) (repeatable). A path source must resolve, links and '..' followed, to a path at or below a prefix. Default: no local source and no NBD export (with --insecure: every local source this host can open).")
  List<String> sourceAllow = new ArrayList<>();

  @picocli.CommandLine.Mixin NbdCliOptions nbd = new NbdCliOptions();

  @Option(names = "--source-cache", paramLabel = "MODE", description = "auto, direct (O_DIRECT) or writeback (page cache) reads of sources (default: auto).")
  SourceCache sourceCache = SourceCache.AUTO;

  @Option(names = "--max-read-rate", paramLabel = "MB/s", description = "Ceiling on this worker's reads, all threads together, in MB/s (10^6 bytes). Default: none.")
  double maxReadRate;

  @picocli.CommandLine.Mixin MetricsOptions metricsOptions = new MetricsOptions();

  @Override
  public Integer call() throws InterruptedException {
    WorkerConfig config = config();
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    kafka.client.meterInsecure(registry);
    MetricsEndpoint metrics = metricsOptions.serve(registry);
    Worker worker = new Worker(config, registry, Clock.systemUTC());
    Thread hook = new Thread(worker::close, "zcow-worker-stop");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      worker.start();
      if (metrics != null) {
        LOG.info("metrics on port {}", metrics.port());
      }
      while (!worker.awaitTermination(Duration.ofSeconds(60))) {
        // runs until a signal closes it
      }
      return Main.EXIT_OK;
    } finally {
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException shuttingDown) {
        // the hook is closing the worker
      }
      worker.close();
      if (metrics != null) {
        metrics.close();
      }
    }
  }

  /** The worker's settings from the options; every bad value is a BadInputException naming its option. */
  WorkerConfig config() {
    if (threads < 1 || threads > WorkerConfig.MAX_THREADS) {
      throw new BadInputException("--threads must be 1 to " + WorkerConfig.MAX_THREADS + ": " + threads);
    }
    if (!(maxReadRate >= 0) || Double.isInfinite(maxReadRate)) {
      throw new BadInputException("--max-read-rate must be a positive number of MB/s (or 0 for none): " + maxReadRate);
    }
    List<Path> prefixes = new ArrayList<>();
    List<NbdUri> exports = new ArrayList<>();
    for (String p : sourceAllow) {
      if (NbdUri.isNbd(p)) {
        exports.add(NbdUri.parse(p));
        continue;
      }
      Path path;
      try {
        path = Path.of(p);
      } catch (InvalidPathException e) {
        throw new BadInputException("--source-allow " + p + " is not a path: " + e.getMessage());
      }
      if (!path.isAbsolute()) {
        throw new BadInputException("--source-allow must be an absolute path: " + p);
      }
      prefixes.add(path);
    }
    KafkaSettings settings = kafka.settings();
    // Without a key anyone may submit a task; --insecure alone keeps the old "any local source".
    SourcePolicy policy = kafka.client.insecure ? SourcePolicy.allowing(prefixes, exports)
        : SourcePolicy.allowingOnly(prefixes, exports);
    if (policy.allowsAll()) {
      LOG.warn("--insecure and no --source-allow: this worker reads any local source a job names that this host can open");
    } else if (prefixes.isEmpty()) {
      LOG.info("no --source-allow directory: this worker reads no local file or device");
    }
    return WorkerConfig.builder(settings)
        .threads(threads)
        .sources(policy)
        .nbd(nbd.options())
        .sourceCache(sourceCache)
        .maxReadBytesPerSecond(maxReadRate * 1e6)
        .connectTimeout(kafka.client.connectTimeout())
        .build();
  }
}
