package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.coordinator.Coordinator;
import io.zcow.coordinator.Partitioner;
import io.zcow.coordinator.SourceFingerprint;
import io.zcow.coordinator.TopicSetup;
import io.zcow.proto.JobIds;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.proto.WireTargetCache;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.qcow2.ImageOptions;
import io.zcow.qcow2.ImageWriter;
import io.zcow.qcow2.TargetCache;
import io.zcow.qcow2.ZstdClusterCompressor;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import io.zcow.source.SourceLocation;
import io.zcow.source.Sources;
import io.zcow.worker.kafka.WorkerConfig;
import io.zcow.writer.WriterConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.ToLongFunction;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code zcow backup SOURCE TARGET}: a job on an embedded cluster of one, or submitted to a running cluster. */
@Command(
    name = "backup",
    mixinStandardHelpOptions = true,
    description = {
      "Backs up SOURCE (a block device, a raw disk image, or an NBD export: nbd://HOST[:PORT]/EXPORT, nbds://..., nbd+unix:///EXPORT?socket=PATH) into a zstd-compressed qcow2 image at TARGET.",
      "",
      "Without --kafka, this process runs the whole cluster: an embedded Kafka broker and ZooKeeper, the writer and the workers. With --kafka and --zookeeper, the job is submitted to a running cluster and followed; TARGET is then relative to the writer group's target root, and Ctrl-C only detaches.",
      "",
      "Run again with the same --job-id to follow a running job again, or to resume a failed one: the writer issues only the ranges not yet complete (on the embedded cluster this needs --state-dir).",
      "",
      "Exit codes: 0 done, 1 failed, 2 bad usage or input.",
      ""
    },
    sortOptions = false)
final class BackupCommand implements java.util.concurrent.Callable<Integer> {
  /** How long a signal waits for the follower to let go before the process exits. */
  private static final Duration DETACH_WAIT = Duration.ofMillis(1500);

  @Parameters(index = "0", paramLabel = "SOURCE", description = "Block device, raw disk image or NBD URI to read.")
  String source;

  @picocli.CommandLine.Mixin NbdCliOptions nbd = new NbdCliOptions();

  @Parameters(index = "1", paramLabel = "TARGET", description = "qcow2 image to write.")
  Path target;

  @Option(names = "--job-id", paramLabel = "ID", description = "Job id (letters, digits, . _ -, starting with a letter or digit); default: TARGET's name and a random suffix.")
  String jobId;

  @Option(names = "--workers", paramLabel = "N", description = "Compressing threads of the embedded worker (default: the number of cores, ${DEFAULT-VALUE}).")
  int workers = Runtime.getRuntime().availableProcessors();

  @Option(names = "--window", paramLabel = "N", description = "Ranges the writer keeps issued to workers and not yet complete, at most (1 to 4096; default: twice the workers, at least 4).")
  Integer window;

  @Option(names = "--range-size", paramLabel = "SIZE", description = "Unit of work and completion; a multiple of the cluster size (default: 512m).")
  SizeValue rangeSize = new SizeValue(ImageOptions.DEFAULT_RANGE_BYTES);

  @Option(names = "--cluster-size", paramLabel = "SIZE", description = "qcow2 cluster size, 4k to 2m (default: 64k).")
  SizeValue clusterSize = new SizeValue(64 << 10);

  @Option(names = "--level", paramLabel = "L", description = "zstd level, -7 to 22 (default: ${DEFAULT-VALUE}, QEMU's).")
  int level = 3;

  @Option(names = "--target-cache", paramLabel = "MODE", description = "direct or writeback (default: direct where the file system allows it).")
  String targetCache;

  @Option(names = "--write-cache", paramLabel = "on|off", description = "off writes every payload at once instead of through the cluster-fill cache. Default: on.")
  String writeCache = "on";

  @Option(names = "--progress", paramLabel = "MODE", description = "auto (a bar on a terminal, else lines), plain or none (default: auto).")
  String progress = "auto";

  @Option(names = "--force", description = "Replace TARGET (and a stale TARGET.part) if it exists (embedded cluster only). Unlike convert, the old TARGET is removed when the job starts, not when the new image is complete.")
  boolean force;

  @Option(names = "--state-dir", paramLabel = "DIR", description = "Keep the embedded broker's and ZooKeeper's data here, so that an interrupted job can be resumed (default: temporary, removed at the end).")
  Path stateDir;

  @Option(names = "--writer-group", paramLabel = "GROUP", description = "Writer group that writes the image (default: ${DEFAULT-VALUE}).")
  String writerGroup = WriterConfig.DEFAULT_GROUP;

  @Option(names = "--listen", paramLabel = "HOST:PORT", description = "Where the embedded broker listens, so that other hosts' workers can join (default: loopback, a free port).")
  String listen;

  @Option(names = "--checkpoint-interval", paramLabel = "DURATION", description = "How often the embedded writer commits a resumable checkpoint (default: ${DEFAULT-VALUE}).")
  String checkpointInterval = "10s";

  @Option(names = "--kafka", paramLabel = "HOST:PORT[,...]", description = "Submit to this Kafka cluster instead of the embedded one.")
  String kafka;

  @Option(names = "--size", paramLabel = "SIZE",
      description = "With --kafka, when SOURCE is visible only to the workers' hosts: its size in bytes (64g, 2t...). No range is skipped as a hole and no fingerprint guards a resume.")
  SizeValue size;

  @Option(names = "--zookeeper", paramLabel = "HOST:PORT[,...]", description = "Not needed: the writer group publishes the job's state on Kafka. Accepted (and ignored) so that older command lines still run.")
  String zookeeper;

  @Option(names = "--kafka-config", paramLabel = "FILE", description = "Kafka client properties (TLS, SASL).")
  Path kafkaConfig;

  @Option(names = "--auth-key-file", paramLabel = "FILE", description = "File holding the cluster's record key (at least 32 bytes, e.g. head -c 32 /dev/urandom): records are signed with it, and records without a valid MAC are refused. On the embedded cluster its writer and workers use it too; with --kafka every role of the cluster needs the same file.")
  Path authKeyFile;

  @Option(names = "--connect-timeout", paramLabel = "SECONDS", description = "Give up on an unreachable --kafka or --zookeeper after this long (default: ${DEFAULT-VALUE}).")
  int connectTimeout = 15;

  @Option(names = "--require-space", description = "Refuse to start (exit 2) when TARGET's file system has less usable space than the image may need: every cluster of data stored uncompressed, plus metadata (embedded cluster only; without it a shortfall is only a warning).")
  boolean requireSpace;

  @Option(names = "--pre-hook", paramLabel = "CMD", description = "Run CMD with /bin/sh -c before the job starts (after the input checks); a non-zero exit stops the backup (exit 1) before anything starts. Environment: ZCOW_JOB_ID, ZCOW_SOURCE, ZCOW_TARGET.")
  String preHook;

  @Option(names = "--post-hook", paramLabel = "CMD", description = "Run CMD with /bin/sh -c after the job ends, also when it failed or was interrupted (not when --pre-hook failed). Its failure is reported and does not change the exit code. Environment: as --pre-hook, and ZCOW_EXIT (the backup's exit code).")
  String postHook;

  /** The usable space of a directory's file system (tests replace it). */
  static ToLongFunction<Path> usableSpace = dir -> {
    try {
      return Files.getFileStore(dir).getUsableSpace();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  };

  @Override
  public Integer call() throws Exception {
    PrintStream err = System.err;
    Checked in = check();
    boolean embedded = kafka == null;
    if (embedded && System.getenv(Main.ENV_LOG_LEVEL) == null) {
      // The progress display is the interface here: the in-process roles' per-range lines would
      // interleave with it. Their warnings still show; ZCOW_LOG_LEVEL=info brings the rest back.
      // So do the embedded cluster's start-up and the coordinator's: the command prints its own
      // header and summary lines. The controller's "activation" warning is routine on the fresh
      // storage of every run.
      for (String quiet : List.of("io.zcow.worker", "io.zcow.writer", "io.zcow.cli.embedded", "io.zcow.coordinator")) {
        System.setProperty("org.slf4j.simpleLogger.log." + quiet, "warn");
      }
      System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka.controller.QuorumController", "error");
    } else if (System.getenv(Main.ENV_LOG_LEVEL) != null) {
      System.setProperty("org.slf4j.simpleLogger.log.io.zcow", System.getenv(Main.ENV_LOG_LEVEL));
    }
    try (Source src = size != null
        ? new io.zcow.coordinator.UnseenSource(in.source.uri(), size.bytes())
        : Sources.open(in.source, SourceCache.AUTO, in.nbd)) {
      long size = src.size();
      if (size == 0) {
        throw new BadInputException("source " + source + " is empty");
      }
      ImageGeometry geometry = ImageGeometry.forSource(size, in.clusterBytes);
      Partitioner partitioner = new Partitioner(src, geometry, rangeSize.bytes());
      String id = jobId != null ? jobId : defaultJobId();
      JobSpec spec = JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(id)
          .setSourceUri(in.source.uri()).setSourceSize(size)
          .setVirtualSize(geometry.virtualSize()).setClusterSize(in.clusterBytes).setRangeSize(rangeSize.bytes())
          .setCodec(WireCodec.WIRE_CODEC_ZSTD).setLevel(level)
          .setTargetPath(embedded ? target.getFileName().toString() : target.toString())
          .setTargetCache(in.targetCache).setWriteCache(in.writeCache).setWriterGroup(writerGroup)
          .setSourceIdentity(this.size != null
              ? io.zcow.proto.SourceIdentity.newBuilder().setSize(size).build() : SourceFingerprint.of(src))
          .setState(JobState.JOB_STATE_SUBMITTED).build();
      int w = window != null ? window : Math.max(4, 2 * workers);
      if (embedded) {
        checkSpace(partitioner, err);
      }
      Map<String, String> env = new TreeMap<>(Map.of("ZCOW_JOB_ID", id, "ZCOW_SOURCE", source.toString(),
          "ZCOW_TARGET", target.toString()));
      if (preHook != null) {
        int status = Hook.run("--pre-hook", preHook, env, err);
        if (status != 0) {
          err.println("zcow: --pre-hook exited with status " + status + "; nothing was started");
          return Main.EXIT_FAILED;
        }
      }
      int code = Main.EXIT_FAILED;
      try {
        code = embedded ? EmbeddedBackup.run(this, spec, partitioner, w, in, err)
            : runOnCluster(spec, partitioner, w, in.progress, in.auth, err);
        return code;
      } finally {
        if (postHook != null) {
          env.put("ZCOW_EXIT", Integer.toString(code));
          int status = Hook.run("--post-hook", postHook, env, err);
          if (status != 0) {
            err.println("zcow: --post-hook exited with status " + status
                + (code == Main.EXIT_OK ? " (the backup itself is done)" : ""));
          }
        }
      }
    }
  }

  /**
   * The most the image can take on TARGET's file system: every guest cluster of a data range
   * stored raw, plus the metadata. {@link ImageGeometry#worstCaseHostClusters()} counts the guest
   * clusters twice (a bound that sizes the refcount table, not a file size), so one count is taken
   * off; hole ranges never hold a data cluster. A .part being resumed already holds its share.
   */
  private void checkSpace(Partitioner partitioner, PrintStream err) throws IOException {
    ImageGeometry g = partitioner.geometry();
    long clusters = g.worstCaseHostClusters() - g.guestClusters();
    BitSet data = partitioner.dataRanges();
    for (int r = 0; r < partitioner.rangeCount(); r++) {
      if (!data.get(r)) {
        clusters -= partitioner.layout().clusters(r);
      }
    }
    long need = clusters * g.clusterSize();
    Path absTarget = target.toAbsolutePath();
    Path part = ImageWriter.partPath(absTarget);
    long have = usableSpace.applyAsLong(absTarget.getParent());
    if (!force && Files.exists(part)) {
      have += Files.size(part);
    }
    if (have >= need) {
      return;
    }
    String msg = "the image may need up to " + Progress.human(need) + " and " + absTarget.getParent() + " has "
        + Progress.human(have) + " usable";
    if (requireSpace) {
      throw new BadInputException(msg + " (--require-space)");
    }
    err.println("zcow: warning: " + msg + "; it fits only if the data compresses");
  }

  /** The options, checked before anything is started. */
  record Checked(int clusterBytes, WireTargetCache targetCache, boolean writeCache, Progress.Mode progress,
      RecordAuth auth, SourceLocation source, io.zcow.source.nbd.NbdOptions nbd) {}

  private Checked check() {
    TargetCache cacheMode = ConvertCommand.targetCacheMode(targetCache);
    boolean writeCacheOn = ConvertCommand.onOff("--write-cache", writeCache);
    Progress.Mode progressMode = ConvertCommand.enumValue("--progress", progress, Progress.Mode.class);
    if (workers < 1 || workers > WorkerConfig.MAX_THREADS) {
      throw new BadInputException("--workers must be 1 to " + WorkerConfig.MAX_THREADS + ": " + workers);
    }
    if (connectTimeout < 1 || connectTimeout > 3600) {
      throw new BadInputException("--connect-timeout must be 1 to 3600 seconds: " + connectTimeout);
    }
    if (window != null && (window < 1 || window > 4096)) {
      throw new BadInputException("--window must be 1 to 4096: " + window);
    }
    if (level < ZstdClusterCompressor.MIN_LEVEL || level > ZstdClusterCompressor.MAX_LEVEL) {
      throw new BadInputException("--level must be " + ZstdClusterCompressor.MIN_LEVEL + " to "
          + ZstdClusterCompressor.MAX_LEVEL + ": " + level);
    }
    if (clusterSize.bytes() < 4096 || clusterSize.bytes() > (2 << 20) || Long.bitCount(clusterSize.bytes()) != 1) {
      throw new BadInputException("--cluster-size must be a power of two from 4k to 2m: " + clusterSize);
    }
    if (rangeSize.bytes() <= 0 || rangeSize.bytes() % clusterSize.bytes() != 0) {
      throw new BadInputException("--range-size " + rangeSize + " must be a positive multiple of the cluster size "
          + clusterSize);
    }
    String idProblem = jobId == null ? null : JobIds.problem(jobId);
    if (idProblem != null) {
      throw new BadInputException("--job-id: " + idProblem);
    }
    Topics.chunks(writerGroup);
    if (size != null) {
      if (kafka == null) {
        throw new BadInputException("--size is for --kafka, when only the workers' hosts see SOURCE");
      }
      if (size.bytes() <= 0) {
        throw new BadInputException("--size must be positive: " + size);
      }
    }
    SourceLocation location = Sources.parse(source);
    if (location instanceof SourceLocation.LocalFile f) {
      Path path = f.path().toAbsolutePath();
      location = new SourceLocation.LocalFile(path);
      if (size == null && !Files.exists(path)) {
        throw new BadInputException("source " + source + " does not exist");
      }
      if (size == null && Files.isDirectory(path)) {
        throw new BadInputException("source " + source + " is a directory");
      }
      if (size == null && !Files.isReadable(path)) {
        throw new BadInputException("source " + source + " is not readable");
      }
    }
    if (kafka == null) {
      if (zookeeper != null) {
        throw new BadInputException("--zookeeper needs --kafka (the embedded cluster has its own)");
      }
      if (stateDir != null && jobId != null && !force && !Files.exists(target)) {
        // A resume: the .part of the interrupted run is what the writer continues from.
        TargetPaths.check(target, true);
      } else {
        TargetPaths.check(target, force);
      }
      if (stateDir != null && !Files.isDirectory(stateDir)) {
        throw new BadInputException("--state-dir " + stateDir + " is not a directory");
      }
    } else {
      if (target.isAbsolute()) {
        throw new BadInputException("with --kafka, TARGET is relative to the writer group's target root: " + target);
      }
      if (listen != null || stateDir != null || force || requireSpace) {
        throw new BadInputException("--listen, --state-dir, --force and --require-space are for the embedded cluster, not with --kafka");
      }
    }
    WireTargetCache wire = switch (cacheMode) {
      case DIRECT -> WireTargetCache.WIRE_TARGET_CACHE_DIRECT;
      case WRITEBACK -> WireTargetCache.WIRE_TARGET_CACHE_WRITEBACK;
      default -> WireTargetCache.WIRE_TARGET_CACHE_AUTO;
    };
    return new Checked((int) clusterSize.bytes(), wire, writeCacheOn, progressMode, RecordAuth.fromFile(authKeyFile),
        location, nbd.options());
  }

  private String defaultJobId() {
    // A job id starts with a letter or digit (JobIds): ".img.qcow2" becomes "img.qcow2-…".
    String name = target.getFileName().toString().replaceAll("[^A-Za-z0-9._-]", "_").replaceFirst("^[._-]+", "");
    if (name.length() > 80) {
      name = name.substring(0, 80);
    }
    return (name.isEmpty() ? "job" : name) + "-" + UUID.randomUUID().toString().substring(0, 8);
  }

  private int runOnCluster(JobSpec spec, Partitioner partitioner, int w, Progress.Mode mode, RecordAuth auth,
      PrintStream err) throws IOException {
    KafkaSettings settings = kafkaSettings(kafka, auth);
    BackupFollow.ProgressListener listener = new BackupFollow.ProgressListener(spec.getJobId(), err);
    CountDownLatch finished = new CountDownLatch(1);
    try (Coordinator coordinator = new Coordinator(coordinatorConfig(settings, w), spec, partitioner, listener,
        Clock.systemUTC())) {
      Thread hook = new Thread(() -> {
        coordinator.cancel();
        try {
          // Following stops at once; a call still waiting on an unreachable cluster is not waited for.
          finished.await(DETACH_WAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        if (coordinator.onCluster()) {
          System.err.println("zcow backup: detached; job " + spec.getJobId() + " goes on. Re-attach with: zcow backup --kafka "
              + kafka + (zookeeper == null ? "" : " --zookeeper " + zookeeper) + " --writer-group " + writerGroup
              + " --job-id " + spec.getJobId() + " " + source + " " + target);
        } else {
          System.err.println("zcow backup: stopped before job " + spec.getJobId() + " reached the cluster: nothing"
              + " was submitted");
        }
      }, "zcow-backup-detach");
      Runtime.getRuntime().addShutdownHook(hook);
      try {
        if (mode != Progress.Mode.NONE) {
          err.println("zcow backup: job " + spec.getJobId() + " on Kafka at " + kafka + ", writer group " + writerGroup);
        }
        Coordinator.Outcome outcome = BackupFollow.follow(coordinator, listener, partitioner, mode, err);
        return BackupFollow.report(outcome, coordinator, spec, err, mode, null);
      } finally {
        finished.countDown();
        BackupFollow.removeHook(hook);
      }
    }
  }

  KafkaSettings kafkaSettings(String bootstrap, RecordAuth auth) {
    KafkaSettings s = kafkaConfig == null ? KafkaSettings.of(bootstrap) : KafkaSettings.of(bootstrap, kafkaConfig);
    return s.withCallTimeout(Duration.ofSeconds(connectTimeout)).withAuth(auth);
  }

  Coordinator.Config coordinatorConfig(KafkaSettings settings, int w) {
    Coordinator.Config d = Coordinator.Config.defaults(settings, writerGroup, w);
    int maxCluster = Math.max((int) clusterSize.bytes(), d.plan().maxClusterSize());
    TopicSetup.Plan plan = new TopicSetup.Plan(writerGroup, d.plan().taskPartitions(), d.plan().chunkPartitions(),
        maxCluster, d.plan().lockDuration());
    return new Coordinator.Config(settings, plan, w, d.pollTimeout(), d.stallAfter());
  }

  /** Stops the embedded backup in progress as SIGINT would; false when none runs. */
  static boolean interruptRunning() {
    return EmbeddedBackup.interruptRunning();
  }
}
