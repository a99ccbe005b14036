package io.zcow.cli;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.zcow.cli.embedded.DevCluster;
import io.zcow.cli.embedded.HostPort;
import io.zcow.coordinator.Coordinator;
import io.zcow.coordinator.Partitioner;
import io.zcow.proto.JobSpec;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.qcow2.ImageWriter;
import io.zcow.source.SourceLocation;
import io.zcow.worker.kafka.SourcePolicy;
import io.zcow.worker.kafka.Worker;
import io.zcow.worker.kafka.WorkerConfig;
import io.zcow.writer.Writer;
import io.zcow.writer.WriterConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * {@code zcow backup} without {@code --kafka}: the whole cluster in this process (an embedded
 * broker and ZooKeeper, a worker with the job's threads, a writer, the coordinator), closed when
 * the job ends. Without {@code --state-dir} the cluster's state is temporary, and so is what the
 * writer left of an unfinished image.
 */
final class EmbeddedBackup {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(EmbeddedBackup.class);

  private EmbeddedBackup() {}

  /** Runs the job on a cluster of one in this process; the exit code. */
  static int run(BackupCommand cmd, JobSpec spec, Partitioner partitioner, int w, BackupCommand.Checked in,
      PrintStream err) throws Exception {
    Progress.Mode mode = in.progress();
    // Kept state (--state-dir) keeps its key too: a resumed job's records were signed with it.
    Path keptKey = in.auth() == null && cmd.stateDir != null ? EmbeddedKey.stateFile(cmd.stateDir) : null;
    byte[] ownKey = in.auth() == null && keptKey == null ? EmbeddedKey.random() : null;
    // Remote workers (--listen) need the key: in a file of this user's only, named in the join line.
    Path tempKey = ownKey != null && cmd.listen != null
        ? EmbeddedKey.writeFile(ownKey, Path.of(System.getProperty("java.io.tmpdir"))) : null;
    Path keyFile = keptKey != null && cmd.listen != null ? keptKey : tempKey;
    RecordAuth auth = keptKey != null ? RecordAuth.fromFile(keptKey)
        : ownKey != null ? EmbeddedKey.auth(ownKey) : in.auth();
    Path absTarget = cmd.target.toAbsolutePath();
    Duration checkpoint = cmd.checkpointInterval;
    if (cmd.force) {
      TargetPaths.clearStalePart(absTarget, true);
      Files.deleteIfExists(absTarget);
    }
    HostPort kafkaListen = cmd.listen == null ? HostPort.loopbackAnyPort() : HostPort.parse(cmd.listen);
    Clock clock = cmd.env.clock();
    boolean done = false;
    Coordinator coordinator = null;
    Writer writer = null;
    Worker worker = null;
    CountDownLatch finished = new CountDownLatch(1);
    Thread hook = null;
    Runnable interrupt = null;
    DevCluster cluster = DevCluster.start(kafkaListen, HostPort.loopbackAnyPort(), cmd.stateDir);
    try {
      String bootstrap = cluster.broker().bootstrapServers();
      KafkaSettings settings = cmd.kafkaSettings(bootstrap, auth);
      BackupFollow.ProgressListener listener = new BackupFollow.ProgressListener(spec.getJobId(), err);
      coordinator = new Coordinator(cmd.coordinatorConfig(settings, w), spec, partitioner, listener, clock);
      coordinator.setupTopics();
      // Workers first: a new share group's first assignment waits on the broker creating its
      // state topic (about 2 s on a fresh broker), which then overlaps the writer's start.
      // This process's own workers may read the job's NBD source; any other network source stays refused.
      SourcePolicy sources = in.source() instanceof SourceLocation.NbdExport e
          ? SourcePolicy.allowingOnly(List.of(), List.of(e.nbd()))
          : SourcePolicy.allowingOnly(List.of(((SourceLocation.LocalFile) in.source()).path()), List.of());
      // One registry for the process: the embedded worker and writer meter into it side by side.
      PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
      worker = new Worker(WorkerConfig.builder(settings).threads(cmd.workers).origin("backup@embedded")
          .sources(sources).nbd(in.nbd()).connectTimeout(in.connectTimeout()).build(),
          registry, clock);
      worker.start();
      writer = new Writer(WriterConfig.builder(bootstrap, cluster.zooKeeper().connectString(), cmd.embeddedRoot)
          .group(cmd.writerGroup).kafkaProperties(settings.extra()).kafkaCallTimeout(in.connectTimeout())
          .checkpointInterval(checkpoint).auth(auth)
          .jobCacheBytes(256L << 20).build(), clock, registry) // one job: the whole budget
          .start();
      Coordinator c = coordinator;
      interrupt = () -> {
        c.cancel();
        try {
          finished.await(60, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      };
      cmd.env.interrupts().register(interrupt);
      hook = new Thread(interrupt, "zcow-backup-interrupt");
      Runtime.getRuntime().addShutdownHook(hook);
      if (mode != Progress.Mode.NONE) {
        err.println("zcow backup: job " + spec.getJobId() + ", embedded Kafka at " + bootstrap + ", " + cmd.workers
            + " worker threads");
      }
      if (keyFile != null) {
        err.println("zcow backup: workers of other hosts join with (copy " + keyFile + " to them first): " + EmbeddedKey.joinCommand(bootstrap, keyFile,
            in.source() instanceof SourceLocation.LocalFile f ? f.path().toString() : null));
      }
      Coordinator.Outcome outcome = BackupFollow.follow(coordinator, listener, partitioner, spec, mode, err);
      done = outcome != null && outcome.done();
      return BackupFollow.report(outcome, coordinator, spec, err, mode, cmd.target);
    } finally {
      closeTogether(coordinator, worker, writer);
      cluster.close();
      if (tempKey != null) {
        Files.deleteIfExists(tempKey);
      }
      if (!done && cmd.stateDir == null && Files.exists(ImageWriter.partPath(absTarget))) {
        removePartial(absTarget);
        err.println("zcow: removed " + ImageWriter.partPath(absTarget).getFileName()
            + ": without --state-dir the embedded cluster's state is gone, so the job cannot be resumed");
      }
      finished.countDown();
      if (interrupt != null) {
        cmd.env.interrupts().clear(interrupt);
      }
      BackupFollow.removeHook(hook);
    }
  }

  /**
   * Closes the in-process roles at once: each waits on its own clients (share sessions released,
   * producers flushed), about a second apiece, and none depends on another being closed first —
   * the writer's state is durable at its checkpoints, whatever the workers still send.
   */
  private static void closeTogether(AutoCloseable... roles) {
    List<Thread> closing = new ArrayList<>();
    for (AutoCloseable role : roles) {
      if (role == null) {
        continue;
      }
      Thread t = new Thread(() -> {
        try {
          role.close();
        } catch (Exception e) {
          LOG.warn("closing {}: {}", role.getClass().getSimpleName(), e.toString());
        }
      }, "zcow-close-" + role.getClass().getSimpleName());
      t.start();
      closing.add(t);
    }
    for (Thread t : closing) {
      try {
        t.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /** Without --state-dir nothing can resume the job: what the writer left of it goes too. */
  static void removePartial(Path target) {
    Path part = ImageWriter.partPath(target);
    try {
      Files.deleteIfExists(part);
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(part.getParent(), part.getFileName() + ".state-*")) {
        for (Path p : ds) {
          Files.deleteIfExists(p);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
