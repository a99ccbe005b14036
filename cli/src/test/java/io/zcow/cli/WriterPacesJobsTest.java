package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.zcow.cli.embedded.DevCluster;
import io.zcow.cli.embedded.HostPort;
import io.zcow.coordinator.Coordinator;
import io.zcow.coordinator.Partitioner;
import io.zcow.coordinator.TopicSetup;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.proto.WireTargetCache;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import io.zcow.worker.kafka.Worker;
import io.zcow.worker.kafka.WorkerConfig;
import io.zcow.writer.Writer;
import io.zcow.writer.WriterConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The writer paces every job from its plan: a job goes on when its coordinator detaches, and a
 * job's size (ranges, holes) never reaches ZooKeeper. Real broker, ZooKeeper, writer and workers
 * in this process; the coordinators are driven directly.
 */
class WriterPacesJobsTest {
  private static final long MIB = 1 << 20;

  @TempDir Path dir;

  @BeforeAll
  static void qemu() {
    QemuImg.assumeAvailable();
  }

  @Test
  @Timeout(240)
  void aJobGoesOnToItsEndAfterItsCoordinatorDetaches() throws Exception {
    Path src = Disks.mixed(dir.resolve("detach.raw"), 24 * MIB, 31);
    Path root = Files.createDirectory(dir.resolve("root"));
    try (DevCluster cluster = DevCluster.start(HostPort.loopbackAnyPort(), HostPort.loopbackAnyPort(), null)) {
      String kafka = cluster.broker().bootstrapServers();
      try (Writer writer = new Writer(WriterConfig.builder(kafka, cluster.zooKeeper().connectString(), root).build(),
          Clock.systemUTC()).start();
          // Throttled: the job outlives its coordinator by far (24 MiB at 3 MB/s).
          Worker worker = new Worker(WorkerConfig.builder(KafkaSettings.of(kafka)).threads(1)
              .maxReadBytesPerSecond(3e6).build(), new SimpleMeterRegistry(), Clock.systemUTC())) {
        worker.start();
        try (Source s = Source.open(src, SourceCache.AUTO);
            Coordinator c = coordinator(kafka, s, spec("detach-1", src, s, 2 * MIB, "detach.qcow2"), 2)) {
          c.start();
          assertEquals(null, c.runOnce());
        } // detached: nobody fills a window any more but the writer
        awaitFile(root.resolve("detach.qcow2"), Duration.ofSeconds(180));
      }
    }
    QemuImg.assertClean(root.resolve("detach.qcow2"));
    QemuImg.assertIdentical(src, root.resolve("detach.qcow2"));
  }

  @Test
  @Timeout(300)
  void twoJobsOfNearlySixteenTebibytesInSmallRangesCompleteSideBySide() throws Exception {
    long size = (16L << 40) - 4096; // ext4's largest file
    Path root = Files.createDirectory(dir.resolve("root"));
    List<Path> sources = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      sources.add(Disks.sparse(dir.resolve("huge-" + i + ".raw"), size, 40 + i, 0, 5L << 40, size - 65536));
    }
    try (DevCluster cluster = DevCluster.start(HostPort.loopbackAnyPort(), HostPort.loopbackAnyPort(), null)) {
      String kafka = cluster.broker().bootstrapServers();
      try (Writer writer = new Writer(WriterConfig.builder(kafka, cluster.zooKeeper().connectString(), root)
          .cacheBytes(16 * MIB).build(), Clock.systemUTC()).start();
          Worker worker = new Worker(WorkerConfig.builder(KafkaSettings.of(kafka)).threads(2).build(),
              new SimpleMeterRegistry(), Clock.systemUTC())) {
        worker.start();
        List<Source> open = new ArrayList<>();
        List<Coordinator> jobs = new ArrayList<>();
        try {
          for (int i = 0; i < 2; i++) {
            Source s = Source.open(sources.get(i), SourceCache.AUTO);
            open.add(s);
            Coordinator c = coordinator(kafka, s, spec("huge-" + i, sources.get(i), s, 4 * MIB, "huge-" + i + ".qcow2"), 8);
            jobs.add(c);
            c.start();
            assertEquals(3, 4_194_304 - c.zeroRanges(), "three ranges of data, the rest declared holes");
          }
          List<Coordinator.Outcome> outcomes = new ArrayList<>(List.of(new Coordinator.Outcome(null, "", false),
              new Coordinator.Outcome(null, "", false)));
          long deadline = System.nanoTime() + Duration.ofSeconds(240).toNanos();
          while (outcomes.stream().anyMatch(o -> o.state() == null) && System.nanoTime() < deadline) {
            for (int i = 0; i < 2; i++) {
              Coordinator.Outcome o = outcomes.get(i).state() == null ? jobs.get(i).runOnce() : null;
              if (o != null) {
                outcomes.set(i, o);
              }
            }
          }
          for (Coordinator.Outcome o : outcomes) {
            assertEquals(JobState.JOB_STATE_DONE, o.state(), o.reason());
          }
        } finally {
          jobs.forEach(Coordinator::close);
          open.forEach(Source::close);
        }
      }
    }
    for (int i = 0; i < 2; i++) {
      Path image = root.resolve("huge-" + i + ".qcow2");
      QemuImg.assertClean(image);
      QemuImg.assertIdentical(sources.get(i), image);
    }
  }

  private static JobSpec spec(String id, Path path, Source s, long rangeSize, String target) {
    return JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(id)
        .setSourceUri(path.toAbsolutePath().toUri().toString())
        .setSourceSize(s.size()).setVirtualSize((s.size() + 511) & ~511L).setClusterSize(65536)
        .setRangeSize(rangeSize).setCodec(WireCodec.WIRE_CODEC_ZSTD).setLevel(3).setTargetPath(target)
        .setTargetCache(WireTargetCache.WIRE_TARGET_CACHE_AUTO).setWriteCache(true)
        .setWriterGroup(WriterConfig.DEFAULT_GROUP).build();
  }

  private static Coordinator coordinator(String kafka, Source s, JobSpec spec, int window) {
    KafkaSettings settings = KafkaSettings.of(kafka);
    Coordinator.Config config = new Coordinator.Config(settings, TopicSetup.Plan.defaults(WriterConfig.DEFAULT_GROUP),
        window, Duration.ofMillis(100), Duration.ofMinutes(3));
    return new Coordinator(config, spec, new Partitioner(s, ImageGeometry.forSource(s.size(), 65536),
        spec.getRangeSize()), st -> { }, Clock.systemUTC());
  }

  private static void awaitFile(Path file, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!Files.exists(file)) {
      assertTrue(System.nanoTime() < deadline, "no " + file + " after " + timeout);
      Thread.sleep(100);
    }
  }
}
