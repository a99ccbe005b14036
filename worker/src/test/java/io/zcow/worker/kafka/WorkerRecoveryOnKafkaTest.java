package io.zcow.worker.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.JobSpec;
import io.zcow.proto.RangeTask;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.AcknowledgementCommitCallback;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.ShareConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.metrics.KafkaMetric;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A worker on a real broker whose first share consumer is wedged — subscribed and alive, but its
 * {@code poll} never returns a task, as after the broker outage of issue 14 — while the "writer"
 * (this test) reports ranges no worker has started: the worker replaces the consumer by itself
 * and the job's chunks rebuild the source.
 */
@ExtendWith(EmbeddedKafkaExtension.class)
class WorkerRecoveryOnKafkaTest {
  private static final int CLUSTER = 64 << 10;

  @TempDir Path dir;

  @Test
  void aWorkerWhoseConsumerFetchesNothingWhileRangesWaitGetsANewOneAndTheJobFinishes(EmbeddedKafka kafka)
      throws Exception {
    Path disk = Disks.mixed(dir.resolve("mixed.img"), 12L << 20, 5);
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    try (TaskBench bench = new TaskBench(kafka, 1, 1)) {
      JobSpec job = bench.job("job-wedged", disk, CLUSTER);
      List<RangeTask> tasks = TaskBench.tasks(job);
      bench.publish(job);
      bench.publish(tasks);
      AtomicInteger made = new AtomicInteger();
      Worker w = new Worker(bench.config("worker@wedged").idleBound(Duration.ofSeconds(8)).build(), registry,
          java.time.Clock.systemUTC());
      w.wrapConsumers(c -> made.incrementAndGet() == 1 ? new Wedged(c) : c);
      try {
        w.start();
        long deadline = System.nanoTime() + TaskBench.PATIENCE.toNanos();
        while (bench.dones(job.getJobId()).size() < tasks.size()) {
          if (System.nanoTime() > deadline) {
            fail("the job did not finish; consumers made: " + made.get() + ", dones: " + bench.dones(job.getJobId()).size());
          }
          bench.publishProgress(job.getJobId(), tasks.size() - started(bench, job.getJobId()));
          for (int i = 0; i < 5; i++) {
            bench.readSome();
          }
        }
        bench.assertChunksRebuild(job, tasks, disk);
        assertTrue(made.get() >= 2, "a new consumer was made: " + made.get());
        assertTrue(registry.find("zcow.worker.consumer.replacements").tag("reason", "idle").counter().count() >= 1);
        assertEquals(tasks.size(), w.metrics().tasksDone(), "every range done by the new consumer");
      } finally {
        w.close();
      }
    }
  }

  private static int started(TaskBench bench, String jobId) {
    Set<Long> ranges = new HashSet<>();
    for (ChunkRecord c : bench.chunks) {
      if (c.hasStarted() && c.getStarted().getJobId().equals(jobId)) {
        ranges.add(c.getStarted().getRangeIndex());
      }
    }
    return ranges.size();
  }

  /** A share consumer that is subscribed and alive but whose poll never returns a record. */
  private static final class Wedged implements ShareConsumer<String, byte[]> {
    private final ShareConsumer<String, byte[]> real;

    Wedged(ShareConsumer<String, byte[]> real) {
      this.real = real;
    }

    @Override
    public ConsumerRecords<String, byte[]> poll(Duration timeout) {
      try {
        Thread.sleep(timeout.toMillis());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return ConsumerRecords.empty();
    }

    @Override
    public Set<String> subscription() {
      return real.subscription();
    }

    @Override
    public void subscribe(java.util.Collection<String> topics) {
      real.subscribe(topics);
    }

    @Override
    public void unsubscribe() {
      real.unsubscribe();
    }

    @Override
    public void acknowledge(ConsumerRecord<String, byte[]> record) {
      real.acknowledge(record);
    }

    @Override
    public void acknowledge(ConsumerRecord<String, byte[]> record, AcknowledgeType type) {
      real.acknowledge(record, type);
    }

    @Override
    public void acknowledge(String topic, int partition, long offset, AcknowledgeType type) {
      real.acknowledge(topic, partition, offset, type);
    }

    @Override
    public Map<TopicIdPartition, Optional<KafkaException>> commitSync() {
      return real.commitSync();
    }

    @Override
    public Map<TopicIdPartition, Optional<KafkaException>> commitSync(Duration timeout) {
      return real.commitSync(timeout);
    }

    @Override
    public void commitAsync() {
      real.commitAsync();
    }

    @Override
    public void setAcknowledgementCommitCallback(AcknowledgementCommitCallback callback) {
      real.setAcknowledgementCommitCallback(callback);
    }

    @Override
    public Uuid clientInstanceId(Duration timeout) {
      return real.clientInstanceId(timeout);
    }

    @Override
    public Optional<Integer> acquisitionLockTimeoutMs() {
      return real.acquisitionLockTimeoutMs();
    }

    @Override
    public Map<MetricName, ? extends Metric> metrics() {
      return real.metrics();
    }

    @Override
    public void registerMetricForSubscription(KafkaMetric metric) {
      real.registerMetricForSubscription(metric);
    }

    @Override
    public void unregisterMetricFromSubscription(KafkaMetric metric) {
      real.unregisterMetricFromSubscription(metric);
    }

    @Override
    public void close() {
      real.close();
    }

    @Override
    public void close(Duration timeout) {
      real.close(timeout);
    }

    @Override
    public void wakeup() {
      real.wakeup();
    }
  }
}
