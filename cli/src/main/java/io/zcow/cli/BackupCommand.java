package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.coordinator.Coordinator;
import io.zcow.coordinator.Partitioner;
import io.zcow.coordinator.SourceFingerprint;
import io.zcow.coordinator.TopicSetup;
import io.zcow.proto.ClusterRun;
import io.zcow.proto.JobIds;
import io.zcow.proto.JobPlan;
import io.zcow.proto.JobSpecs;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.proto.WireTargetCache;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.qcow2.ImageWriter;
import io.zcow.qcow2.IncrementalPlan;
import io.zcow.source.DirtyClusters;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import io.zcow.source.SourceLocation;
import io.zcow.source.Sources;
import io.zcow.worker.kafka.WorkerConfig;
import io.zcow.writer.WriterConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
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
      "With --incremental PREV --bitmap NAME, TARGET is an overlay whose backing file is PREV (named relative to TARGET's directory): only the clusters the dirty bitmap NAME of the NBD SOURCE marks changed (and any the source grew by) are read, sent and stored. PREV must be a clean qcow2 v3 image with sound metadata (as qemu-img check sees it) and the same cluster size; a source smaller than PREV is refused. With --kafka, PREV is relative to the writer group's target root, like TARGET.",
      "",
      "With --incremental PREV alone (no --bitmap), any SOURCE: workers read and digest every cluster and send only those whose SHA-256 differs from PREV's digest manifest (PREV.digests, written beside every image); the writer hands each task its range's previous digests. A PREV without a manifest that matches it is refused.",
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

  @Mixin ImageCliOptions image = new ImageCliOptions();

  @Option(names = "--progress", paramLabel = "MODE", description = "auto (a bar on a terminal, else lines), plain or none (default: auto).")
  Progress.Mode progress = Progress.Mode.AUTO;

  @Option(names = "--force", description = "Replace TARGET (and a stale TARGET.part) if it exists (embedded cluster only). Unlike convert, the old TARGET is removed when the job starts, not when the new image is complete.")
  boolean force;

  @Option(names = "--state-dir", paramLabel = "DIR", description = "Keep the embedded broker's and ZooKeeper's data here, and the cluster's record key (cluster.key, mode 0600), so that an interrupted job can be resumed (default: temporary, removed at the end).")
  Path stateDir;

  @Option(names = "--writer-group", paramLabel = "GROUP", description = "Writer group that writes the image (default: ${DEFAULT-VALUE}).")
  String writerGroup = WriterConfig.DEFAULT_GROUP;

  @Option(names = "--listen", paramLabel = "HOST:PORT", description = "Where the embedded broker listens, so that other hosts' workers can join (default: loopback, a free port).")
  String listen;

  @Option(names = "--checkpoint-interval", paramLabel = "DURATION", description = "How often the embedded writer commits a resumable checkpoint (default: 10s).")
  Duration checkpointInterval = Duration.ofSeconds(10);

  @Option(names = "--kafka", paramLabel = "HOST:PORT[,...]", description = "Submit to this Kafka cluster instead of the embedded one.")
  String kafka;

  @Option(names = "--size", paramLabel = "SIZE",
      description = "With --kafka, when SOURCE is visible only to the workers' hosts: its size in bytes (64g, 2t...). No range is skipped as a hole and no fingerprint guards a resume.")
  SizeValue size;

  @Option(names = "--zookeeper", paramLabel = "HOST:PORT[,...]", description = "Not needed: the writer group publishes the job's state on Kafka. Accepted (and ignored) so that older command lines still run.")
  String zookeeper;

  @Mixin KafkaClientOptions kafkaClient = new KafkaClientOptions();

  @Option(names = "--require-space", description = "Refuse to start (exit 2) when TARGET's file system has less usable space than the image may need: every cluster of data (of an incremental backup, every changed cluster) stored uncompressed, plus metadata (embedded cluster only; without it a shortfall is only a warning).")
  boolean requireSpace;

  @Mixin HookOptions hooks = new HookOptions();

  @Mixin IncrementalCliOptions incremental = new IncrementalCliOptions();

  /** The embedded writer's target root: TARGET's directory, or the one holding TARGET and PREV. */
  Path embeddedRoot;

  final Environment env;

  BackupCommand(Environment env) {
    this.env = env;
  }

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
    IncrementalCliOptions.Request inc = in.incremental();
    // Its own connection, closed before SOURCE is opened (qemu-nbd serves one client unless -e).
    DirtyClusters changed = inc == null || inc.byDigest() ? null
        : inc.changed(in.nbd(), image.clusterBytes()).coarsened(JobSpecs.MAX_CHANGED_RUNS);
    // By digest, a task carries its range's previous digests: ranges small enough that they fit.
    long rangeBytes = inc != null && inc.byDigest()
        ? JobSpecs.digestRangeSize(image.rangeSize.bytes(), image.clusterBytes()) : image.rangeSize.bytes();
    try (Source src = size != null
        ? new io.zcow.coordinator.UnseenSource(in.source.uri(), size.bytes())
        : Sources.open(in.source, SourceCache.AUTO, in.nbd)) {
      long size = src.size();
      if (size == 0) {
        throw new BadInputException("source " + source + " is empty");
      }
      ImageGeometry geometry = ImageGeometry.forSource(size, image.clusterBytes());
      Partitioner partitioner = new Partitioner(src, geometry, rangeBytes);
      String id = jobId != null ? jobId : defaultJobId();
      JobSpec spec = JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(id)
          .setSourceUri(in.source.uri()).setSourceSize(size)
          .setVirtualSize(geometry.virtualSize()).setClusterSize(image.clusterBytes())
          .setRangeSize(rangeBytes).setCodec(WireCodec.WIRE_CODEC_ZSTD).setLevel(image.level)
          .setTargetPath(embedded ? embeddedPaths(inc) : target.toString())
          .setTargetCache(in.targetCache).setWriteCache(image.writeCache).setWriterGroup(writerGroup)
          .setSourceIdentity(this.size != null
              ? io.zcow.proto.SourceIdentity.newBuilder().setSize(size).build() : SourceFingerprint.of(src))
          .setState(JobState.JOB_STATE_SUBMITTED).build();
      // Embedded: PREV checked before anything starts (one line, exit 2); with --kafka the writer checks it.
      io.zcow.qcow2.BackingFile backing = embedded && inc != null
          ? io.zcow.qcow2.BackingFile.of(inc.previous(), embeddedRoot.resolve(spec.getTargetPath()), geometry) : null;
      if (backing != null && inc.byDigest()) {
        inc.previousDigests().close(); // PREV's manifest present and matching, or one line, exit 2
      }
      if (inc != null) {
        spec = withChanges(spec, inc, changed, embedded);
      }
      int w = window != null ? window : Math.max(4, 2 * workers);
      if (embedded) {
        checkSpace(partitioner, backing == null || changed == null ? null : new IncrementalPlan(changed, backing, geometry),
            err);
      }
      Map<String, String> hookEnv = HookOptions.environment(id, source, target.toString());
      if (!hooks.before(hookEnv, err)) {
        return Main.EXIT_FAILED;
      }
      int code = Main.EXIT_FAILED;
      try {
        code = embedded ? EmbeddedBackup.run(this, spec, partitioner, w, in, err)
            : runOnCluster(spec, partitioner, w, in.progress, in.auth, err);
        return code;
      } finally {
        hooks.after(hookEnv, code, err);
      }
    }
  }

  /**
   * Sets {@link #embeddedRoot} and returns TARGET relative to it: TARGET's directory, or for an
   * incremental backup the deepest directory holding both TARGET and PREV, so that the writer's
   * confinement admits PREV.
   */
  private String embeddedPaths(IncrementalCliOptions.Request inc) throws IOException {
    Path dir = target.toAbsolutePath().getParent().toRealPath();
    Path abs = dir.resolve(target.getFileName());
    embeddedRoot = dir;
    if (inc != null && Files.exists(inc.previous())) { // a missing one is refused by BackingFile.of
      Path prev = inc.previous().toRealPath();
      while (!prev.startsWith(embeddedRoot)) {
        embeddedRoot = embeddedRoot.getParent();
      }
    }
    return embeddedRoot.relativize(abs).toString();
  }

  /** The job as an overlay on PREV holding the changed clusters. */
  private JobSpec withChanges(JobSpec spec, IncrementalCliOptions.Request inc, DirtyClusters changed, boolean embedded)
      throws IOException {
    String backing = embedded
        ? embeddedRoot.relativize(inc.previous().toRealPath()).toString()
        : inc.previous().toString();
    if (changed == null) {
      return spec.toBuilder().setBackingPath(backing).setByDigest(true).build();
    }
    JobPlan.Builder plan = spec.getPlan().toBuilder();
    for (int i = 0; i < changed.runs(); i++) {
      plan.addChanged(ClusterRun.newBuilder().setFirst(changed.runStart(i))
          .setCount(changed.runEnd(i) - changed.runStart(i)));
    }
    return spec.toBuilder().setBackingPath(backing).setPlan(plan).build();
  }

  /**
   * The most the image can take on TARGET's file system: every guest cluster of a data range
   * stored raw, plus the metadata. {@link ImageGeometry#worstCaseHostClusters()} counts the guest
   * clusters twice (a bound that sizes the refcount table, not a file size), so one count is taken
   * off; hole ranges never hold a data cluster, and an overlay holds only its changed clusters. A
   * .part being resumed already holds its share.
   */
  private void checkSpace(Partitioner partitioner, IncrementalPlan plan, PrintStream err) throws IOException {
    ImageGeometry g = partitioner.geometry();
    long clusters = g.worstCaseHostClusters() - g.guestClusters();
    if (plan != null) {
      // An overlay stores only the changed clusters (and a grown tail).
      clusters -= g.guestClusters() - plan.changedCount(0, g.guestClusters());
    } else {
      BitSet data = partitioner.dataRanges();
      for (int r = 0; r < partitioner.rangeCount(); r++) {
        if (!data.get(r)) {
          clusters -= partitioner.layout().clusters(r);
        }
      }
    }
    long need = clusters * g.clusterSize();
    Path absTarget = target.toAbsolutePath();
    Path part = ImageWriter.partPath(absTarget);
    long have = env.usableSpace().applyAsLong(absTarget.getParent());
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

  /** The options, checked; {@code auth} is null when the embedded cluster is to make its own key. */
  record Checked(WireTargetCache targetCache, Progress.Mode progress, RecordAuth auth, SourceLocation source,
      io.zcow.source.nbd.NbdOptions nbd, Duration connectTimeout, IncrementalCliOptions.Request incremental) {}

  private Checked check() {
    image.check();
    Duration connectTimeout = kafkaClient.connectTimeout();
    if (workers < 1 || workers > WorkerConfig.MAX_THREADS) {
      throw new BadInputException("--workers must be 1 to " + WorkerConfig.MAX_THREADS + ": " + workers);
    }
    if (window != null && (window < 1 || window > 4096)) {
      throw new BadInputException("--window must be 1 to 4096: " + window);
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
    if (checkpointInterval.isZero()) {
      throw new BadInputException("--checkpoint-interval must be positive");
    }
    WireTargetCache wire = switch (image.targetCache) {
      case DIRECT -> WireTargetCache.WIRE_TARGET_CACHE_DIRECT;
      case WRITEBACK -> WireTargetCache.WIRE_TARGET_CACHE_WRITEBACK;
      default -> WireTargetCache.WIRE_TARGET_CACHE_AUTO;
    };
    // A cluster needs the operator's key (or --insecure); the embedded one makes its own (null here).
    boolean ownKey = kafka == null && kafkaClient.authKeyFile == null && !kafkaClient.insecure;
    RecordAuth auth = ownKey ? null : kafkaClient.clusterAuth();
    IncrementalCliOptions.Request inc = incremental.check(source);
    if (inc != null && kafka != null && inc.previous().isAbsolute()) {
      throw new BadInputException("with --kafka, PREV is relative to the writer group's target root: " + inc.previous());
    }
    return new Checked(wire, progress, auth, location, nbd.options(), connectTimeout, inc);
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
        Coordinator.Outcome outcome = BackupFollow.follow(coordinator, listener, partitioner, spec, mode, err);
        return BackupFollow.report(outcome, coordinator, spec, err, mode, null);
      } finally {
        finished.countDown();
        BackupFollow.removeHook(hook);
      }
    }
  }

  KafkaSettings kafkaSettings(String bootstrap, RecordAuth auth) {
    return kafkaClient.settings(bootstrap, auth);
  }

  Coordinator.Config coordinatorConfig(KafkaSettings settings, int w) {
    Coordinator.Config d = Coordinator.Config.defaults(settings, writerGroup, w);
    int maxCluster = Math.max(image.clusterBytes(), d.plan().maxClusterSize());
    TopicSetup.Plan plan = new TopicSetup.Plan(writerGroup, d.plan().taskPartitions(), d.plan().chunkPartitions(),
        maxCluster, d.plan().lockDuration());
    return new Coordinator.Config(settings, plan, w, d.pollTimeout(), d.stallAfter());
  }
}
