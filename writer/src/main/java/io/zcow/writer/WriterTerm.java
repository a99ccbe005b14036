package io.zcow.writer;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobState;
import io.zcow.proto.PartitionOffset;
import io.zcow.proto.RangeTask;
import io.zcow.proto.WriterCheckpoint;
import io.zcow.proto.kafka.TopicReader;
import java.io.Closeable;
import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One leadership term of a writer: recover from the committed checkpoints, then consume the
 * group's chunks topic into images until the term ends. A new term (after any re-election or
 * reconnect) builds a new one, so nothing is ever carried over from memory.
 *
 * <p>Each {@link #runOnce()} follows the jobs ({@link JobTable}), applies one poll of chunk
 * records ({@link ChunkIngest}), then — between batches only — takes the ends the batch asked
 * for, finishes complete jobs, paces every job ({@link RangePacer}: issue, time, re-issue), sends
 * progress and checkpoints ({@link CheckpointRound}) when their intervals have passed. Every end
 * goes through {@link Transitions}. Timers run on the injected monotonic clock; the wall clock only
 * stamps what is published. Before every write it asks {@code mayWrite}; once that says no it
 * throws {@link DeposedException}, and {@link #close()} closes the images (writes in flight end,
 * the fence locks go with their files).
 *
 * <p>Not thread safe: one thread calls {@link #start()}, {@link #runOnce()} and {@link #close()}.
 */
public final class WriterTerm implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(WriterTerm.class);
  private static final Duration POLL = Duration.ofMillis(200);
  private static final Duration KAFKA_CALL = Duration.ofSeconds(30);
  /** A call of the term to Kafka waits at most this long: 30 s, or less when the loss bound is shorter. */
  private final Duration kafkaCall;

  /** Lifecycle of a term. */
  public enum State { NEW, RECOVERING, RUNNING, CLOSED }

  private final WriterConfig config;
  private final WriterZk zk;
  private final BooleanSupplier mayWrite;
  private final WriterMetrics metrics;
  private final LongSupplier nowMs;
  private final WriterClients clients;
  private final Consumer<String, byte[]> chunks;
  private final WriterOutput out;
  private final JobTable jobs;
  private final ChunkIngest ingest;
  private final WorkerReleases releases;
  private final KafkaReach reach;
  private State state = State.NEW;
  private List<TopicPartition> partitions = List.of();
  private CheckpointRound checkpoints;
  private Transitions transitions;
  private long lastCheckpointMs;
  private long lastProgressMs;
  /**
   * Chunk records the broker no longer has between the committed offsets and the log start, per
   * partition (empty when none were lost): found by {@link #start()}, acted on once every job is open.
   */
  private Map<TopicPartition, Long> lostChunks = Map.of();
  /** When a range last started or a cluster last arrived, in any job: the group is not idle. */
  private long groupActiveMs;

  /**
   * @param mayWrite asked before every write: false once ZooKeeper said SUSPENDED or LOST
   * @param nanoTime the monotonic clock every timer of the term reads
   * @param reach when the brokers last answered; the term probes and updates it
   */
  WriterTerm(WriterConfig config, WriterZk zk, WriterClients clients, Clock wall, LongSupplier nanoTime,
      BooleanSupplier mayWrite, WriterMetrics metrics, KafkaReach reach) {
    this.config = config;
    this.reach = reach;
    this.kafkaCall = config.kafkaLossTimeout().compareTo(KAFKA_CALL) < 0 ? config.kafkaLossTimeout() : KAFKA_CALL;
    this.zk = zk;
    this.clients = clients;
    this.mayWrite = mayWrite;
    this.metrics = metrics;
    this.nowMs = () -> nanoTime.getAsLong() / 1_000_000;
    String id = "zcow-writer-" + config.group();
    this.chunks = clients.chunkConsumer(id + "-chunks");
    this.out = new WriterOutput(config, clients.producer(id), wall, zk::epoch, "writer@" + hostName() + "/" + config.group());
    this.jobs = new JobTable(config, zk, new TopicReader(clients.consumer(id + "-jobs"), config.jobsTopic(), kafkaCall),
        out, mayWrite, nowMs);
    this.releases = new WorkerReleases(new TopicReader(clients.consumer(id + "-events"), config.eventsTopic(), kafkaCall),
        config.auth());
    this.ingest = new ChunkIngest(config, jobs, out, metrics, this::checkLeader, new ChunkIngest.Pacing() {
      @Override
      public void badData(JobRun run, long range) {
        issue(run, run.pacer.badData(range, nowMs.getAsLong()));
      }

      @Override
      public void active(JobRun run, long range) {
        groupActiveMs = nowMs.getAsLong();
        run.pacer.progressed(range, groupActiveMs);
      }
    }, nowMs);
  }

  public State state() {
    return state;
  }

  /**
   * Recovers: positions the chunks consumer at the group's committed offsets (the beginning when
   * there are none), reads the jobs topic to its end and opens the images of this group's running
   * jobs. Jobs whose image is still locked by the old leader are retried by {@link #runOnce()},
   * which reads no chunk until all are open.
   */
  public void start() {
    if (state != State.NEW) {
      throw new IllegalStateException("WriterTerm.start() called in state " + state);
    }
    state = State.RECOVERING;
    partitions = seekToCommitted();
    reach.heard();
    // Trimming is an admin call that waits for its timeout when the brokers are away: skipped then.
    checkpoints = new CheckpointRound(config, zk, chunks, partitions, clients, metrics, Clock.systemUTC(),
        reach::answering);
    transitions = new Transitions(zk, out, checkpoints, jobs::open, jobs.confinement());
    jobs.transitions(transitions);
    jobs.recover();
    lastCheckpointMs = nowMs.getAsLong();
    lastProgressMs = lastCheckpointMs;
    groupActiveMs = lastCheckpointMs;
  }

  private List<TopicPartition> seekToCommitted() {
    List<PartitionInfo> infos = chunks.partitionsFor(config.chunksTopic(), kafkaCall);
    if (infos == null || infos.isEmpty()) {
      throw new io.zcow.RetriableException("topic " + config.chunksTopic() + " does not exist (the coordinator creates it)", null);
    }
    List<TopicPartition> partitions = infos.stream().map(i -> new TopicPartition(i.topic(), i.partition())).toList();
    chunks.assign(partitions);
    Map<Integer, Long> committed = new HashMap<>();
    Optional<WriterCheckpoint> offsets;
    try {
      offsets = zk.groupOffsets();
    } catch (io.zcow.CorruptException e) {
      // Reading from the beginning replays more than needed, never less: duplicates are dropped.
      LOG.warn("[group={}] the group's committed offsets are damaged ({}): reading chunks from the beginning",
          config.group(), e.getMessage());
      offsets = Optional.empty();
    }
    offsets.ifPresent(cp -> cp.getOffsetsList().forEach(po -> committed.put(po.getPartition(), po.getOffset())));
    // Records past the committed offsets may be gone (deleted, a broker that lost its data): read
    // from where the log begins now, and re-issue the ranges whose chunks may have been lost.
    Map<TopicPartition, Long> beginning = chunks.beginningOffsets(partitions, kafkaCall);
    Map<TopicPartition, Long> lost = new HashMap<>();
    for (TopicPartition tp : partitions) {
      long from = committed.getOrDefault(tp.partition(), 0L);
      long begins = beginning.getOrDefault(tp, 0L);
      if (begins > from) {
        lost.put(tp, begins - from);
        from = begins;
      }
      chunks.seek(tp, from);
    }
    lostChunks = lost;
    LOG.info("[group={}] epoch {}: recovering; chunks from {}", config.group(), zk.epoch(),
        committed.isEmpty() ? "the beginning" : committed);
    return partitions;
  }

  /**
   * One turn: returns once a poll of chunks (at most about 200 ms of waiting) has been applied.
   *
   * @throws DeposedException when leadership was lost; close this term and start a new one
   */
  public void runOnce() {
    if (state == State.NEW || state == State.CLOSED) {
      throw new IllegalStateException("runOnce() in state " + state);
    }
    checkLeader();
    probeKafka();
    if (!reach.answering()) {
      // Nothing can be read, and a send could wait for metadata (max.block.ms): idle until Kafka
      // answers or the bound ends the term.
      sleep(POLL);
      return;
    }
    jobs.poll(Duration.ZERO);
    releases.poll(this::released);
    jobs.admitQueued();
    // While recovering, every job that ran before opens before anything is ingested (lost ranges
    // are re-issued for all of them at once); later, only a wait for a lock holds the turn.
    if (!jobs.retryPendingOpens() || (state == State.RECOVERING && !jobs.pendingOpen().isEmpty())) {
      sleep(POLL);
      return;
    }
    if (state == State.RECOVERING) {
      state = State.RUNNING;
      LOG.info("[group={}] epoch {}: running ({} jobs open)", config.group(), zk.epoch(), jobs.open().size());
      reissueLostRanges();
    }
    Set<JobRun> touched = new HashSet<>();
    var polled = chunks.poll(POLL);
    if (!polled.isEmpty()) {
      reach.heard();
    }
    for (ConsumerRecord<String, byte[]> r : polled) {
      JobRun run = ingest.apply(r);
      if (run != null) {
        touched.add(run);
      }
    }
    // Between batches from here on: the consumer's position covers exactly what was applied.
    for (JobRun run : touched) {
      noteCompletedRanges(run);
    }
    takeEnds();
    long now = nowMs.getAsLong();
    for (JobRun run : jobs.open()) {
      issue(run, run.pacer.due(now, groupActiveMs));
      if (run.isOpen()) {
        for (RangeTask t : run.pacer.fill(run.complete, now)) {
          run.markUnchanged(t);
          out.task(t);
        }
      }
    }
    takeEnds();
    if (now - lastProgressMs >= config.progressInterval().toMillis()) {
      lastProgressMs = now;
      for (JobRun run : jobs.open()) {
        out.event(run.id, EventKind.EVENT_KIND_PROGRESS, JobState.JOB_STATE_RUNNING, -1, "", run.progress(), null);
      }
      metrics.gauges(jobs.open(), jobs.queuedCount(), chunkLag());
    }
    if (now - lastCheckpointMs >= config.checkpointInterval().toMillis()) {
      try {
        checkpointAll();
      } catch (org.apache.kafka.common.errors.TimeoutException e) {
        // The chunks consumer's position needs the brokers, which do not answer: the previous
        // checkpoint stands, the next turn tries again, and the probe decides about the term.
        LOG.warn("[group={}] epoch {}: checkpoint put off: {}", config.group(), zk.epoch(), e.getMessage());
      }
    }
  }

  /**
   * Probes the brokers ({@link KafkaReach#probe}); past the bound without an answer, takes a last
   * checkpoint (ZooKeeper still answers; a failure leaves the previous one standing) and ends the
   * term with {@link KafkaUnreachableException}, between batches as every end is.
   */
  private void probeKafka() {
    reach.probe(chunks, partitions, nowMs.getAsLong(), "[group=" + config.group() + "] epoch " + zk.epoch());
    if (!reach.lost()) {
      return;
    }
    if (state == State.RUNNING) {
      try {
        checkpointAll();
      } catch (DeposedException deposed) {
        throw deposed;
      } catch (RuntimeException e) {
        LOG.warn("[group={}] epoch {}: last checkpoint before giving up failed ({}); the previous one stands",
            config.group(), zk.epoch(), e.toString());
      }
    }
    throw new KafkaUnreachableException("[group=" + config.group() + "] Kafka has not answered for "
        + reach.silence().toMillis() + " ms (bound " + reach.bound().toMillis() + " ms): giving up leadership of epoch "
        + zk.epoch());
  }

  /** Chunk records on the broker past this term's position (what the consumer last heard; 0 if unknown). */
  private long chunkLag() {
    long lag = 0;
    for (TopicPartition tp : chunks.assignment()) {
      lag += chunks.currentLag(tp).orElse(0);
    }
    return lag;
  }

  /**
   * Chunk records were lost past the checkpoint: every range the checkpoint left incomplete is read
   * again, never skipped. Those this term restored as outstanding are issued again now (their
   * chunks may be among the lost; duplicates are dropped); the others are issued through the
   * window as at every term start. One WARN line says how many records and which ranges.
   */
  private void reissueLostRanges() {
    if (lostChunks.isEmpty()) {
      return;
    }
    long records = lostChunks.values().stream().mapToLong(Long::longValue).sum();
    String why = "its chunks may be among " + records + " records lost from " + config.chunksTopic();
    long now = nowMs.getAsLong();
    StringBuilder ranges = new StringBuilder();
    for (JobRun run : jobs.open()) {
      List<Long> reissued = new ArrayList<>();
      for (RangePacer.Due d : run.pacer.reissueAll(now, why)) {
        if (d instanceof RangePacer.Due.Reissue re) {
          reissued.add(re.range());
          run.requeued++;
          metrics.requeue();
          out.task(re.task());
          out.event(run.id, EventKind.EVENT_KIND_RANGE_REQUEUED, JobState.JOB_STATE_RUNNING, re.range(),
              "attempt " + re.task().getAttempt() + ": " + re.why(), null, null);
        } else if (d instanceof RangePacer.Due.Exhausted ex) {
          run.requestEnd(JobState.JOB_STATE_FAILED, "range " + ex.range() + " re-queued " + ex.attempts()
              + " times: no worker completed it (last: " + ex.why() + ")");
        }
      }
      List<Integer> incomplete = new ArrayList<>();
      for (int r = run.complete.nextClearBit(0); r < run.layout.ranges(); r = run.complete.nextClearBit(r + 1)) {
        incomplete.add(r);
      }
      ranges.append(ranges.length() == 0 ? "" : "; ").append(run.tag(-1)).append(" ranges ").append(incomplete)
          .append(" read again (issued again now: ").append(reissued).append(", the others through the window)");
    }
    LOG.warn("[group={}] {} chunk records were lost past the checkpoint (records per partition: {}): {}",
        config.group(), records, lostChunks, ranges.length() == 0 ? "no job is open" : ranges);
    lostChunks = Map.of();
    takeEnds();
  }

  /** Runs {@link #runOnce()} until leadership is lost (DeposedException) or the thread is interrupted. */
  public void runUntilDeposed() {
    while (!Thread.currentThread().isInterrupted()) {
      runOnce();
    }
  }

  /** Checkpoints every open job now (between batches). */
  void checkpointAll() {
    checkLeader();
    transitions.checkpointAll();
    lastCheckpointMs = nowMs.getAsLong();
  }

  private void noteCompletedRanges(JobRun run) {
    BitSet now = run.image.completeRanges();
    BitSet fresh = (BitSet) now.clone();
    fresh.andNot(run.complete);
    run.complete = now;
    for (int r = fresh.nextSetBit(0); r >= 0; r = fresh.nextSetBit(r + 1)) {
      run.pacer.completed(r);
      LOG.debug("{} complete", run.tag(r));
      out.event(run.id, EventKind.EVENT_KIND_RANGE_DONE, JobState.JOB_STATE_RUNNING, r, "", null, null);
    }
  }

  private void released(WorkerReleases.Release r) {
    for (JobRun run : jobs.open()) {
      if (run.id.equals(r.jobId())) {
        issue(run, run.pacer.released(r.range(), r.reason(), r.failedAttempt(), nowMs.getAsLong()));
      }
    }
  }

  /** Sends the re-issued tasks; a range out of attempts fails its job (at the next {@link #takeEnds}). */
  private void issue(JobRun run, List<RangePacer.Due> due) {
    for (RangePacer.Due d : due) {
      if (d instanceof RangePacer.Due.Reissue re) {
        run.requeued++;
        metrics.requeue();
        out.task(re.task());
        LOG.warn("{} issued again as attempt {}: {}", run.tag(re.range()), re.task().getAttempt(), re.why());
        out.event(run.id, EventKind.EVENT_KIND_RANGE_REQUEUED, JobState.JOB_STATE_RUNNING, re.range(),
            "attempt " + re.task().getAttempt() + ": " + re.why(), null, null);
      } else if (d instanceof RangePacer.Due.Exhausted ex) {
        // A worker's reason (an NBD server gone: its address) says more than the timer's.
        run.requestEnd(JobState.JOB_STATE_FAILED, "range " + ex.range() + " re-queued " + ex.attempts()
            + " times: no worker completed it (" + (ex.lastRelease().isEmpty() ? "" : "last released: "
            + ex.lastRelease() + "; ") + "last: " + ex.why() + ")");
      }
    }
  }

  /** Takes the ends asked for during the batch, and finishes the jobs that are complete. */
  private void takeEnds() {
    for (JobRun run : jobs.all()) {
      if (run.state != JobRun.State.OPEN || run.image == null) {
        continue;
      }
      checkLeader();
      if (run.targetFailed != null) {
        transitions.targetFailed(run, run.targetFailed);
      } else if (run.endRequest != null) {
        transitions.end(run, run.endRequest.state(), run.endRequest.reason());
      } else if (run.image.isComplete()) {
        transitions.end(run, JobState.JOB_STATE_DONE, "");
      }
    }
  }

  private void checkLeader() {
    if (!mayWrite.getAsBoolean()) {
      throw new DeposedException("[group=" + config.group() + "] leadership lost (epoch " + zk.epoch() + "): writing stops", null);
    }
  }

  private static void sleep(Duration d) {
    try {
      Thread.sleep(d.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static String hostName() {
    try {
      return java.net.InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      return "unknown";
    }
  }

  /**
   * Ends the term without finishing anything: images are closed (their writes in flight end and
   * the fence locks go with their files), clients are closed. The .part files and the committed
   * checkpoints stay for the next leader.
   */
  @Override
  public void close() {
    if (state == State.CLOSED) {
      return;
    }
    state = State.CLOSED;
    for (JobRun run : jobs.open()) {
      try {
        run.image.close();
      } catch (RuntimeException e) {
        LOG.warn("{} closing the image: {}", run.tag(-1), e.toString());
      }
    }
    try {
      chunks.close(Duration.ofSeconds(5));
    } catch (RuntimeException e) {
      LOG.warn("closing a consumer: {}", e.toString());
    }
    jobs.close();
    releases.close();
    out.close();
    clients.close();
  }
}
