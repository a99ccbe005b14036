package io.zcow.writer;

import com.google.protobuf.ByteString;
import io.zcow.RetriableException;
import io.zcow.TargetIoException;
import io.zcow.proto.PartitionOffset;
import io.zcow.proto.Wire;
import io.zcow.proto.WriterCheckpoint;
import io.zcow.qcow2.Checkpoint;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One checkpoint of every open job, taken only between batches of records (so the consumer's
 * positions cover exactly what was applied): each image is made durable (its fills waited for,
 * fdatasync, state file), then the jobs' checkpoints and the chunks topic's offsets are committed
 * in one ZooKeeper transaction that checks the leader's epoch, then the images drop older state
 * files and the topic is trimmed below the committed offsets.
 *
 * <p>Not thread safe: the term's thread.
 */
final class CheckpointRound {
  private static final Logger LOG = LoggerFactory.getLogger(CheckpointRound.class);
  /**
   * The consumer's position is local while it holds one; when it must ask the brokers (a position
   * awaiting validation after a lost connection), the term waits no longer than a probe does, so a
   * leader cut off from Kafka still probes and gives up within its bound.
   */
  private static final Duration KAFKA_CALL = KafkaReach.PROBE_TIMEOUT;

  /**
   * Jobs whose image could not be checkpointed: their target failed (full, an I/O error), or
   * another failure of that image (the reason). They end at their last committed checkpoint; the
   * others commit.
   */
  record Result(Map<JobRun, TargetIoException> targetFailed, Map<JobRun, String> failed) {}

  private final WriterConfig config;
  private final WriterZk zk;
  private final Consumer<String, byte[]> chunks;
  private final List<TopicPartition> partitions;
  private final WriterClients clients;
  private final WriterMetrics metrics;
  private final Clock wall;
  private final java.util.function.BooleanSupplier mayTrim;

  /** @param mayTrim false while the brokers do not answer: the trim waits for the next round */
  CheckpointRound(WriterConfig config, WriterZk zk, Consumer<String, byte[]> chunks, List<TopicPartition> partitions,
      WriterClients clients, WriterMetrics metrics, Clock wall, java.util.function.BooleanSupplier mayTrim) {
    this.mayTrim = mayTrim;
    this.config = config;
    this.zk = zk;
    this.chunks = chunks;
    this.partitions = partitions;
    this.clients = clients;
    this.metrics = metrics;
    this.wall = wall;
  }

  /**
   * Checkpoints {@code open} (jobs whose target failed are left out and returned: they end at
   * their last committed checkpoint, the others commit).
   *
   * @throws DeposedException when the epoch is no longer the group's
   */
  Result run(List<JobRun> open) {
    long t0 = System.nanoTime();
    WriterCheckpoint.Builder offsets = WriterCheckpoint.newBuilder().setFormatVersion(Wire.FORMAT_VERSION)
        .setLeaderEpoch(zk.epoch()).setTimeMs(wall.millis());
    Map<TopicPartition, Long> positions = new HashMap<>();
    for (TopicPartition tp : partitions) {
      long pos = chunks.position(tp, KAFKA_CALL);
      positions.put(tp, pos);
      offsets.addOffsets(PartitionOffset.newBuilder().setPartition(tp.partition()).setOffset(pos));
    }
    List<WriterZk.JobCommit> commits = new ArrayList<>();
    Map<JobRun, Checkpoint> taken = new HashMap<>();
    Map<JobRun, TargetIoException> targetFailed = new LinkedHashMap<>();
    Map<JobRun, String> failed = new LinkedHashMap<>();
    for (JobRun run : open) {
      Checkpoint cp;
      try {
        cp = run.image.checkpoint();
      } catch (TargetIoException e) {
        targetFailed.put(run, e);
        continue;
      } catch (RuntimeException e) {
        if (Isolation.endsTheTerm(e)) {
          throw e;
        }
        failed.put(run, "its checkpoint failed: " + Isolation.reason(e));
        continue;
      }
      taken.put(run, cp);
      WriterCheckpoint.Builder job = offsets.clone().setJobId(run.id).setImageCheckpoint(ByteString.copyFrom(cp.toBytes()))
          .addAllIssued(run.pacer.issued());
      if (run.committedImageCheckpoint != null) {
        job.setPreviousImageCheckpoint(ByteString.copyFrom(run.committedImageCheckpoint));
      }
      commits.add(new WriterZk.JobCommit(run.id, job.build()));
    }
    zk.commit(commits, offsets.build());
    taken.forEach((run, cp) -> {
      run.image.checkpointCommitted(cp);
      run.committedImageCheckpoint = cp.toBytes();
    });
    metrics.checkpoint(System.nanoTime() - t0);
    LOG.debug("[group={}] checkpoint of {} jobs committed at {}", config.group(), taken.size(), positions);
    trim(positions);
    return new Result(targetFailed, failed);
  }

  /** Deletes chunk records below the committed offsets; a failure only delays reclaiming space. */
  private void trim(Map<TopicPartition, Long> positions) {
    Map<TopicPartition, Long> below = new HashMap<>();
    positions.forEach((tp, o) -> {
      if (o > 0) {
        below.put(tp, o);
      }
    });
    if (below.isEmpty() || !mayTrim.getAsBoolean()) {
      return;
    }
    try {
      clients.deleteRecordsBelow(below);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RetriableException("interrupted while trimming " + config.chunksTopic(), e);
    } catch (Exception e) {
      LOG.warn("[group={}] cannot trim {}: {}", config.group(), config.chunksTopic(), e.toString());
    }
  }
}
