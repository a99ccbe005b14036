package io.zcow.worker.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeLayout;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.worker.RangeStats;
import io.zcow.worker.kafka.RangeRunner.Outcome;
import io.zcow.worker.kafka.RangeRunner.Work;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.MockShareConsumer;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.errors.InvalidRecordStateException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The task loop alone: kafka-clients' {@link MockShareConsumer} (taught to fail its commits), a
 * fake clock, a fake range executor whose ranges end when the test says, and jobs whose "work
 * waiting" the test sets. One test per trigger of {@link ConsumerHealth}, and the idle loop that
 * must keep its consumer while other workers hold every task.
 */
class TaskLoopTest {
  private static final String TASKS = "tasks";
  private static final Duration IDLE_BOUND = Duration.ofSeconds(60);
  private static final Duration RENEW = Duration.ofSeconds(30);

  private final FakeClock clock = new FakeClock();
  private final FakeJobs jobs = new FakeJobs();
  private final FakeRanges ranges = new FakeRanges();
  private final List<TestConsumer> consumers = new ArrayList<>();
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private final WorkerMetrics metrics = new WorkerMetrics(registry);
  private final JobSpec spec = spec("job-1", 4);
  private final TaskLoop loop = new TaskLoop(0, this::newConsumer, ranges, jobs,
      new EventSender(new MockProducer<>(true, null, new StringSerializer(), new ByteArraySerializer()),
          KafkaSettings.of("localhost:9").auth(), "events", "test-worker", clock),
      metrics, config(), clock, new AtomicLong());
  private long nextOffset;

  @AfterEach
  void stop() {
    loop.abandon();
    loop.runOnce();
  }

  @Test
  void aHealthyConsumerIsKeptAndEveryAcknowledgementIsCommittedWithinFiveSeconds() {
    startRange(0);
    ranges.finish(0);
    turn();
    assertEquals(List.of(AcknowledgeType.ACCEPT), consumer().acks(), "the range is accepted");
    assertTrue(consumer().commitTimeouts.stream().allMatch(t -> t.compareTo(Duration.ofSeconds(5)) <= 0),
        consumer().commitTimeouts.toString());
    for (int i = 0; i < 10; i++) {
      clock.advance(Duration.ofSeconds(30));
      turn();
    }
    assertEquals(1, consumers.size(), "no work waits: an idle healthy consumer is kept");
    assertEquals(0, metrics.consumerReplacements());
  }

  @Test
  void aRenewalWhoseCommitTimesOutLosesTheLockAndTheConsumerIsReplacedOnlyAfterTheRange() {
    startRange(0);
    consumer().commitFailure = new TimeoutException("Timeout expired after 5000ms while awaiting commit");
    clock.advance(RENEW);
    turn();
    assertEquals(List.of(AcknowledgeType.RENEW), consumer().acks());
    for (int i = 0; i < 20; i++) { // the range runs on for a long while: the consumer stays
      clock.advance(Duration.ofSeconds(30));
      turn();
    }
    assertEquals(1, consumers.size(), "never replaced while the range runs");
    assertFalse(consumer().closed);
    assertEquals(List.of(AcknowledgeType.RENEW), consumer().acks(), "no second RENEW once the lock is lost");
    ranges.finish(0);
    turn();
    assertEquals(List.of(AcknowledgeType.RENEW), consumers.get(0).acks(), "a range done without its lock is not acked");
    turn();
    assertReplaced("ack_failed");
  }

  @Test
  void anAcceptRefusedForTheRecordsStateIsALostLock() {
    startRange(0);
    consumer().refusal = new InvalidRecordStateException("The record state is invalid");
    ranges.finish(0);
    turn();
    assertEquals(List.of(AcknowledgeType.ACCEPT), consumer().acks());
    turn();
    assertReplaced("lock_lost");
  }

  @Test
  void aRenewedRecordThatDoesNotComeBackIsALostLock() {
    startRange(0);
    consumer().giveBackRenewed = false;
    clock.advance(RENEW);
    turn();
    assertEquals(List.of(AcknowledgeType.RENEW), consumer().acks());
    turn();
    assertEquals(1, consumers.size(), "the range still runs");
    ranges.finish(0);
    turn();
    turn();
    assertReplaced("lock_lost");
    assertEquals(List.of(AcknowledgeType.RENEW), consumers.get(0).acks(), "not accepted without its lock");
  }

  @Test
  void aRenewedRecordThatComesBackKeepsTheRangeAndTheConsumer() {
    startRange(0);
    clock.advance(RENEW);
    turn();
    ranges.finish(0);
    turn();
    assertEquals(List.of(AcknowledgeType.RENEW, AcknowledgeType.ACCEPT), consumer().acks());
    assertEquals(1, ranges.submitted.size(), "the renewed record is not started twice");
    turn();
    assertEquals(1, consumers.size());
    assertEquals(1, metrics.renewals());
  }

  @Test
  void aPollThatThrowsReplacesTheConsumer() {
    ready();
    consumer().pollFailure = new KafkaException("the consumer is broken");
    turn();
    turn();
    assertReplaced("poll_failed");
  }

  @Test
  void anIdleLoopWhileRangesWaitGetsANewConsumerAfterTheBoundAndTakesTasksAgain() {
    ready();
    jobs.waiting = true; // the writer reports ranges no worker has started
    long step = 5_000;
    for (long t = 0; t < IDLE_BOUND.toMillis(); t += step) {
      turn();
      clock.advance(Duration.ofMillis(step));
    }
    turn();
    assertReplaced("idle");
    assertTrue(consumers.get(0).closed);
    offer(1);
    turn();
    turn();
    assertEquals(1, ranges.submitted.size(), "the new consumer's task runs");
    assertEquals(1, ranges.submitted.get(0).range());
  }

  @Test
  void anIdleLoopIsNotReplacedWhileOtherWorkersHoldEveryTask() {
    ready();
    jobs.waiting = false; // every range issued is started: other workers hold them all
    for (int i = 0; i < 100; i++) {
      clock.advance(Duration.ofSeconds(10));
      turn();
    }
    assertEquals(1, consumers.size(), "1000 s idle, nothing waiting: the consumer is kept");
    assertFalse(consumer().closed);
    assertEquals(0, metrics.consumerReplacements());
  }

  @Test
  void aBusyLoopIsNotReplacedForIdlenessWhileItsRangeRuns() {
    startRange(0);
    jobs.waiting = true;
    for (int i = 0; i < 10; i++) { // a slow range, renewed as it goes
      clock.advance(RENEW);
      turn();
    }
    ranges.finish(0);
    turn();
    turn();
    assertEquals(1, consumers.size(), "the range ended just now: the loop was never idle");
    assertEquals(AcknowledgeType.ACCEPT, consumer().acks().get(consumer().acks().size() - 1));
  }

  private void assertReplaced(String reason) {
    assertEquals(2, consumers.size(), "a new consumer was made");
    assertTrue(consumers.get(0).closed, "the old consumer is closed");
    assertEquals(List.of(TASKS), List.copyOf(consumers.get(1).subscription()), "the new one is subscribed");
    assertEquals(1, metrics.consumerReplacements());
    assertEquals(1.0, registryCount(reason));
  }

  private double registryCount(String reason) {
    return registry.find("zcow.worker.consumer.replacements").tag("reason", reason).counter().count();
  }

  /** Runs the loop until the task for {@code range} has started on the fake executor. */
  private void startRange(long range) {
    if (consumers.isEmpty()) {
      ready();
    }
    offer(range);
    int before = ranges.submitted.size();
    for (int i = 0; i < 5 && ranges.submitted.size() == before; i++) {
      turn();
    }
    assertEquals(before + 1, ranges.submitted.size(), "range " + range + " started");
  }

  /** Two turns: the first reads the jobs, the second subscribes and polls. */
  private void ready() {
    turn();
    turn();
    assertEquals(1, consumers.size());
  }

  private void turn() {
    assertTrue(loop.runOnce());
  }

  private TestConsumer consumer() {
    return consumers.get(consumers.size() - 1);
  }

  private void offer(long range) {
    byte[] task = RangeLayout.of(spec).task(spec.getJobId(), range, 0).toByteArray();
    consumer().addRecord(new ConsumerRecord<>(TASKS, 0, nextOffset++, spec.getJobId() + "/" + range, task));
  }

  private TestConsumer newConsumer() {
    TestConsumer c = new TestConsumer();
    consumers.add(c);
    return c;
  }

  private WorkerConfig config() {
    return WorkerConfig.builder(KafkaSettings.of("localhost:9")).topics(new WorkerTopics("jobs", TASKS, "events", "wg"))
        .threads(1).origin("test-worker").renewInterval(RENEW).releaseBackoff(Duration.ZERO)
        .idleBound(IDLE_BOUND).build();
  }

  private static JobSpec spec(String id, int ranges) {
    long size = ranges * (1L << 20);
    return JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(id).setSourceUri("file:///dev/null")
        .setSourceSize(size).setVirtualSize(size).setClusterSize(65536).setRangeSize(1 << 20)
        .setCodec(WireCodec.WIRE_CODEC_ZSTD).setLevel(3).setTargetPath(id + ".qcow2").setWriterGroup("wg")
        .setState(JobState.JOB_STATE_RUNNING).build();
  }

  /**
   * A MockShareConsumer that remembers its acknowledgements, hands a renewed record back on the
   * next poll (as the real client does), and fails its commits when told to.
   */
  private static final class TestConsumer extends MockShareConsumer<String, byte[]> {
    final List<Map.Entry<ConsumerRecord<String, byte[]>, AcknowledgeType>> acknowledged = new ArrayList<>();
    final List<Duration> commitTimeouts = new ArrayList<>();
    final List<ConsumerRecord<String, byte[]>> renewed = new ArrayList<>();
    KafkaException commitFailure; // thrown by commitSync
    KafkaException refusal; // returned by commitSync for the partition
    KafkaException pollFailure; // thrown by poll
    boolean giveBackRenewed = true;
    boolean closed;

    List<AcknowledgeType> acks() {
      return acknowledged.stream().map(Map.Entry::getValue).toList();
    }

    @Override
    public synchronized void acknowledge(ConsumerRecord<String, byte[]> r, AcknowledgeType type) {
      acknowledged.add(Map.entry(r, type));
      if (type == AcknowledgeType.RENEW && giveBackRenewed) {
        renewed.add(r);
      }
    }

    @Override
    public synchronized Map<TopicIdPartition, Optional<KafkaException>> commitSync(Duration timeout) {
      commitTimeouts.add(timeout);
      if (commitFailure != null) {
        renewed.clear();
        throw commitFailure;
      }
      Map<TopicIdPartition, Optional<KafkaException>> result = new HashMap<>();
      result.put(new TopicIdPartition(Uuid.ONE_UUID, 0, TASKS), Optional.ofNullable(refusal));
      return result;
    }

    @Override
    public synchronized ConsumerRecords<String, byte[]> poll(Duration timeout) {
      if (pollFailure != null) {
        throw pollFailure;
      }
      for (ConsumerRecord<String, byte[]> r : renewed) {
        addRecord(r);
      }
      renewed.clear();
      return super.poll(timeout);
    }

    @Override
    public synchronized void close(Duration timeout) {
      closed = true;
      super.close(timeout);
    }
  }

  /** Ranges that run until the test finishes them. */
  private static final class FakeRanges implements RangeExecutor {
    final List<Work> submitted = new ArrayList<>();
    final Map<Long, CompletableFuture<Outcome>> running = new HashMap<>();

    @Override
    public CompletableFuture<Outcome> submit(Work w) {
      submitted.add(w);
      CompletableFuture<Outcome> f = new CompletableFuture<>();
      running.put(w.range(), f);
      return f;
    }

    void finish(long range) {
      running.get(range).complete(new Outcome.Done(new RangeStats(16, 0, 0, 1 << 20, 0), 1_000_000));
    }

    @Override
    public void close(Duration wait) {}
  }

  /** Jobs known to the loop, and whether the writers report ranges no worker has started. */
  private final class FakeJobs implements JobView {
    volatile boolean waiting;

    @Override
    public void awaitCaughtUp(Duration timeout) {}

    @Override
    public Optional<JobSpec> get(String jobId) {
      return jobId.equals(spec.getJobId()) ? Optional.of(spec) : Optional.empty();
    }

    @Override
    public boolean workWaiting() {
      return waiting;
    }
  }

  /** A clock that moves only when the test says. */
  private static final class FakeClock extends Clock {
    private long millis = 1_000_000;

    void advance(Duration d) {
      millis += d.toMillis();
    }

    @Override
    public long millis() {
      return millis;
    }

    @Override
    public Instant instant() {
      return Instant.ofEpochMilli(millis);
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }
  }
}
