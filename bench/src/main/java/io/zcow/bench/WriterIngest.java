package io.zcow.bench;

import io.zcow.cli.embedded.EmbeddedBroker;
import io.zcow.cli.embedded.EmbeddedZooKeeper;
import io.zcow.cli.embedded.HostPort;
import io.zcow.coordinator.TopicSetup;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.proto.WireTargetCache;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.worker.RangeCompressor;
import io.zcow.worker.RangeStats;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import io.zcow.worker.kafka.ChunkSender;
import io.zcow.writer.Writer;
import io.zcow.writer.WriterConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Locale;
import org.apache.kafka.clients.producer.KafkaProducer;

/**
 * Writer ingest: the chunks of a whole disk are preloaded into an embedded broker (compressed by
 * the worker's RangeCompressor, sent by its ChunkSender), then a writer alone drains them into a
 * direct-mode image. Prints the image size and the writer's time from leadership to the renamed
 * image; bench/writer-ingest.sh sets it against dd with O_DIRECT on the same file system.
 *
 * <p>Usage: {@code WriterIngest SOURCE WORK_DIR [CLUSTER_SIZE] [RANGE_SIZE]}.
 */
public final class WriterIngest {
  public static void main(String[] args) throws Exception {
    Path sourcePath = Path.of(args[0]);
    Path work = Files.createDirectories(Path.of(args[1]));
    int clusterSize = args.length > 2 ? Integer.parseInt(args[2]) : 65536;
    long rangeSize = args.length > 3 ? Long.parseLong(args[3]) : 64L << 20;
    Path targetRoot = Files.createDirectories(work.resolve("target"));
    Files.deleteIfExists(targetRoot.resolve("image.qcow2"));
    String group = "bench";
    String job = "ingest-" + System.currentTimeMillis();
    try (EmbeddedBroker broker = EmbeddedBroker.start(HostPort.loopbackAnyPort(), null);
        EmbeddedZooKeeper zk = EmbeddedZooKeeper.start(HostPort.loopbackAnyPort(), null);
        Source source = Source.open(sourcePath, SourceCache.AUTO)) {
      KafkaSettings settings = KafkaSettings.of(broker.bootstrapServers());
      TopicSetup.ensure(settings, TopicSetup.Plan.defaults(group));
      ImageGeometry geometry = ImageGeometry.forSource(source.size(), clusterSize);
      long rangeClusters = rangeSize / clusterSize;
      long ranges = ImageGeometry.ceilDiv(geometry.guestClusters(), rangeClusters);
      // Signed with a random key, as the embedded backup's roles are (secure by default): the
      // writer verifies every record's MAC, so its cost is in the figure.
      byte[] key = new byte[RecordAuth.MIN_KEY_BYTES];
      new java.security.SecureRandom().nextBytes(key);
      RecordAuth auth = RecordAuth.withKey(key);
      long payload = 0;
      long t0 = System.nanoTime();
      try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(settings.producer("bench-preload"));
          RangeCompressor rc = new RangeCompressor(source, geometry, 3)) {
        for (long r = 0; r < ranges; r++) {
          ChunkSender sender = new ChunkSender(producer, auth, Topics.chunks(group), job, r, "bench-" + r, () -> false);
          sender.start("bench@local");
          long first = r * rangeClusters;
          RangeStats stats = rc.compress(first, Math.min(rangeClusters, geometry.guestClusters() - first), sender);
          sender.finish(stats, "bench", 120_000);
          payload += stats.payloadBytes();
        }
        JobSpec spec = JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(job)
            .setSourceUri(sourcePath.toUri().toString()).setSourceSize(source.size())
            .setVirtualSize(geometry.virtualSize()).setClusterSize(clusterSize).setRangeSize(rangeSize)
            .setCodec(WireCodec.WIRE_CODEC_ZSTD).setLevel(3).setTargetPath("image.qcow2")
            .setTargetCache(WireTargetCache.WIRE_TARGET_CACHE_DIRECT).setWriteCache(true).setWriterGroup(group)
            .setCreatedAtMs(System.currentTimeMillis()).setState(JobState.JOB_STATE_SUBMITTED).build();
        producer.send(auth.record(Topics.JOBS, job, spec.toByteArray())).get();
      }
      System.out.printf(Locale.ROOT, "preloaded %d ranges, %d payload bytes in %.1f s%n",
          ranges, payload, (System.nanoTime() - t0) / 1e9);

      WriterConfig config = WriterConfig.builder(broker.bootstrapServers(), zk.connectString(), targetRoot)
          .group(group).auth(auth).build();
      Path image = targetRoot.resolve("image.qcow2");
      try (Writer writer = new Writer(config, Clock.systemUTC()).start()) {
        if (!writer.awaitLeadership(Duration.ofSeconds(60))) {
          throw new IllegalStateException("the writer did not become leader within 60 s");
        }
        long t1 = System.nanoTime();
        while (!Files.exists(image)) {
          if (System.nanoTime() - t1 > 600e9) {
            throw new IllegalStateException("no image after 10 minutes");
          }
          Thread.sleep(5);
        }
        double secs = (System.nanoTime() - t1) / 1e9;
        long size = Files.size(image);
        System.out.printf(Locale.ROOT, "writer: image %d bytes in %.2f s = %.1f MB/s (chunk payload %.1f MB/s)%n",
            size, secs, size / secs / 1e6, payload / secs / 1e6);
        System.out.println("image-bytes " + size);
        System.out.printf(Locale.ROOT, "writer-mbps %.1f%n", size / secs / 1e6);
      }
    }
  }
}
