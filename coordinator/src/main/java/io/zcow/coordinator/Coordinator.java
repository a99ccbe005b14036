package io.zcow.coordinator;

import io.zcow.BadInputException;
import io.zcow.RetriableException;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.proto.kafka.ReportLimiter;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Submits one job and follows it to its end: creates the topics, publishes the JobSpec, tells the
 * writer which ranges are holes, and hands out RangeTasks in a bounded window — at most
 * {@code window} ranges submitted and not yet complete — so that the writer's range timers start
 * only for ranges about to be worked on, and a job of 30 000 ranges does not flood zcow.tasks.
 *
 * <p>Completion is learned from the writer's RANGE_DONE events and, as a fallback for missed
 * events, from the completed-range bitmap the writer commits to ZooKeeper. A re-run with the same
 * job id starts from that bitmap and submits only the missing ranges.
 *
 * <p>Lifecycle: {@link #start()} once, then {@link #runOnce()} until it returns an outcome, then
 * {@link #close()}. Not thread safe, except {@link #cancel()}.
 */
public final class Coordinator implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Coordinator.class);

  /** What a followed job ended with. */
  public record Outcome(JobState state, String reason) {
    public boolean done() {
      return state == JobState.JOB_STATE_DONE;
    }
  }

  /** Receives the job's progress; called on the coordinator's thread. */
  public interface Listener {
    void progress(JobStatus status);

    /** Nothing moved for {@code idle}; called once each time a job becomes stalled. */
    default void stalled(JobStatus status) {}
  }

  /**
   * Settings.
   *
   * @param zookeeper the writers' ZooKeeper (completed ranges, terminal state); null to rely on
   *     events alone (no resume)
   * @param window ranges submitted and not yet complete, at most
   * @param stallAfter no progress for this long reports the job stalled
   * @param zkPollInterval how often the ZooKeeper bitmap is read while running
   */
  public record Config(KafkaSettings kafka, String zookeeper, String zkRoot, TopicSetup.Plan plan, int window,
      Duration pollTimeout, Duration stallAfter, Duration zkPollInterval) {
    public Config {
      Objects.requireNonNull(kafka, "kafka");
      Objects.requireNonNull(plan, "plan");
      Objects.requireNonNull(zkRoot, "zkRoot");
      if (window < 1) {
        throw new IllegalArgumentException("window must be at least 1: " + window);
      }
    }

    public static Config defaults(KafkaSettings kafka, String zookeeper, String writerGroup, int window) {
      return new Config(kafka, zookeeper, CompletionStore.DEFAULT_ZK_ROOT, TopicSetup.Plan.defaults(writerGroup),
          window, Duration.ofMillis(200), Duration.ofMinutes(3), Duration.ofSeconds(5));
    }
  }

  private final Config config;
  private final JobSpec spec;
  private final Partitioner partitioner;
  private final Listener listener;
  private final Clock clock;
  private final String jobId;
  private final int rangeCount;

  private KafkaProducer<String, byte[]> producer;
  private KafkaConsumer<String, byte[]> events;
  private CompletionStore store;
  private final RecordAuth auth;
  private final ReportLimiter unauthenticatedLog = new ReportLimiter(10_000);
  private long unauthenticatedEvents;
  private boolean topicsReady;
  private boolean started;
  private volatile boolean cancelled;

  private final BitSet data;
  private final BitSet complete = new BitSet();
  private final BitSet submitted = new BitSet();
  private int nextCandidate;
  private int maxOutstanding;
  private int tasksSent;
  private int holesSent;

  private long startedMs;
  private long lastMoveMs;
  private long lastZkPollMs;
  private boolean stallReported;
  private long guestBytesAtStart = -1;
  private long guestBytesDone;
  private long hostBytes;
  private Outcome outcome;

  /**
   * @param spec the job, as it will be published (its created_at_ms is set at start)
   * @param partitioner over the job's source; borrowed
   */
  public Coordinator(Config config, JobSpec spec, Partitioner partitioner, Listener listener, Clock clock) {
    this.config = Objects.requireNonNull(config, "config");
    this.spec = Objects.requireNonNull(spec, "spec");
    this.partitioner = Objects.requireNonNull(partitioner, "partitioner");
    this.listener = Objects.requireNonNull(listener, "listener");
    this.clock = Objects.requireNonNull(clock, "clock");
    this.jobId = spec.getJobId();
    this.rangeCount = partitioner.rangeCount();
    this.data = partitioner.dataRanges();
    this.auth = config.kafka().auth();
  }

  /** Creates the topics and sets up the worker share group (also done by {@link #start()}). */
  public void setupTopics() {
    if (!topicsReady) {
      TopicSetup.ensure(config.kafka(), config.plan());
      topicsReady = true;
    }
  }

  /**
   * Reads what is complete already, publishes the job, its hole ranges and the first window of
   * tasks. A job the writer already finished returns at once from {@link #runOnce()} as DONE.
   */
  public void start() {
    if (started) {
      throw new IllegalStateException("already started");
    }
    started = true;
    setupTopics();
    checkSameSource();
    startedMs = clock.millis();
    lastMoveMs = startedMs;
    if (config.zookeeper() != null) {
      store = CompletionStore.connect(config.zookeeper(), config.zkRoot(), spec.getWriterGroup(),
          config.kafka().callTimeout());
      var terminal = store.terminal(jobId);
      if (terminal.isPresent() && terminal.get().state().equals(JobState.JOB_STATE_DONE.name())) {
        LOG.info("[job={}] is done already", jobId);
        outcome = new Outcome(JobState.JOB_STATE_DONE, "");
        return;
      }
      complete.or(store.completedRanges(jobId));
      if (!complete.isEmpty()) {
        LOG.info("[job={}] resuming: {} of {} ranges are complete", jobId, complete.cardinality(), rangeCount);
      }
    }
    producer = new KafkaProducer<>(config.kafka().producer("zcow-coordinator-" + jobId));
    events = new KafkaConsumer<>(config.kafka().assignedConsumer("zcow-coordinator-" + jobId));
    List<TopicPartition> parts = new ArrayList<>();
    for (PartitionInfo p : events.partitionsFor(Topics.EVENTS, config.kafka().callTimeout())) {
      parts.add(new TopicPartition(p.topic(), p.partition()));
    }
    events.assign(parts);
    // Events of earlier runs of this job id are history: follow from now on.
    Map<TopicPartition, Long> ends = events.endOffsets(parts, config.kafka().callTimeout());
    ends.forEach(events::seek);

    JobSpec published = spec.toBuilder().setCreatedAtMs(clock.millis()).setState(JobState.JOB_STATE_SUBMITTED).build();
    List<Future<RecordMetadata>> sends = new ArrayList<>();
    sends.add(producer.send(auth.record(Topics.JOBS, jobId, published.toByteArray())));
    HoleRanges holes = new HoleRanges(spec.getClusterSize());
    String chunks = Topics.chunks(spec.getWriterGroup());
    for (int r = 0; r < rangeCount; r++) {
      if (!data.get(r) && !complete.get(r)) {
        for (ChunkRecord rec : holes.records(jobId, partitioner.span(r))) {
          sends.add(producer.send(auth.record(chunks, Wire.rangeKey(jobId, r), rec.toByteArray())));
        }
        holesSent++;
      }
    }
    await(sends, "publish job " + jobId);
    LOG.info("[job={}] submitted: {} ranges, {} holes", jobId, rangeCount, holesSent);
    fillWindow();
  }

  /**
   * Refuses to resume a job whose source is not the one it started from: the JobSpec already on
   * zcow.jobs (if any, and not CANCELLED, whose image is gone) must carry the same source identity
   * as this one. Specs without a fingerprint (older builds) are not compared.
   *
   * @throws BadInputException naming both identities when they differ
   */
  private void checkSameSource() {
    if (!spec.hasSourceIdentity() || spec.getSourceIdentity().getFingerprint().isEmpty()) {
      return;
    }
    JobSpec earlier = null;
    try (KafkaConsumer<String, byte[]> jobs = new KafkaConsumer<>(config.kafka().assignedConsumer("zcow-coordinator-" + jobId))) {
      List<TopicPartition> parts = new ArrayList<>();
      for (PartitionInfo p : jobs.partitionsFor(Topics.JOBS, config.kafka().callTimeout())) {
        parts.add(new TopicPartition(p.topic(), p.partition()));
      }
      jobs.assign(parts);
      jobs.seekToBeginning(parts);
      Map<TopicPartition, Long> ends = jobs.endOffsets(parts, config.kafka().callTimeout());
      long deadline = clock.millis() + config.kafka().callTimeout().toMillis();
      while (!atEnd(jobs, ends)) {
        if (clock.millis() > deadline) {
          throw new RetriableException("[job=" + jobId + "] reading " + Topics.JOBS + " to its end took more than "
              + config.kafka().callTimeout().toSeconds() + " s", null);
        }
        for (ConsumerRecord<String, byte[]> r : jobs.poll(config.pollTimeout())) {
          if (jobId.equals(r.key()) && auth.verify(r).ok() && Wire.jobSpec(r.value()) instanceof Wire.Decoded.Ok<JobSpec> ok
              && ok.value().getJobId().equals(jobId)) {
            earlier = ok.value();
          }
        }
      }
    }
    if (earlier == null || earlier.getState() == JobState.JOB_STATE_CANCELLED || !earlier.hasSourceIdentity()
        || earlier.getSourceIdentity().getFingerprint().isEmpty()) {
      return;
    }
    if (!earlier.getSourceIdentity().equals(spec.getSourceIdentity())) {
      throw new BadInputException("source changed since the job started ("
          + SourceFingerprint.describe(earlier.getSourceIdentity()) + "; now "
          + SourceFingerprint.describe(spec.getSourceIdentity()) + ")");
    }
  }

  private boolean atEnd(KafkaConsumer<String, byte[]> consumer, Map<TopicPartition, Long> ends) {
    for (Map.Entry<TopicPartition, Long> e : ends.entrySet()) {
      if (consumer.position(e.getKey(), config.kafka().callTimeout()) < e.getValue()) {
        return false;
      }
    }
    return true;
  }

  /**
   * Polls the events once, submits tasks as the window frees, reports progress.
   *
   * @return the outcome once the job is DONE, FAILED or CANCELLED; null while it runs
   */
  public Outcome runOnce() {
    if (!started) {
      throw new IllegalStateException("not started");
    }
    if (outcome != null) {
      return outcome;
    }
    if (cancelled) {
      return null;
    }
    boolean moved = false;
    ConsumerRecords<String, byte[]> polled;
    try {
      polled = events.poll(config.pollTimeout());
    } catch (WakeupException e) {
      return null; // cancel()
    }
    for (ConsumerRecord<String, byte[]> r : polled) {
      if (!authentic(r)) {
        continue;
      }
      if (Wire.jobEvent(r.value()) instanceof Wire.Decoded.Ok<JobEvent> ok && ok.value().getJobId().equals(jobId)) {
        moved |= onEvent(ok.value());
        if (outcome != null) {
          report();
          return outcome;
        }
      }
    }
    long now = clock.millis();
    if (store != null && now - lastZkPollMs >= config.zkPollInterval().toMillis()) {
      lastZkPollMs = now;
      int before = complete.cardinality();
      complete.or(store.completedRanges(jobId));
      moved |= complete.cardinality() != before;
      var terminal = store.terminal(jobId);
      if (terminal.isPresent() && terminal.get().state().equals(JobState.JOB_STATE_DONE.name())) {
        outcome = new Outcome(JobState.JOB_STATE_DONE, "");
        return outcome;
      }
    }
    if (moved) {
      lastMoveMs = now;
      stallReported = false;
    }
    fillWindow();
    JobStatus s = report();
    if (!stallReported && now - lastMoveMs >= config.stallAfter().toMillis()) {
      stallReported = true;
      LOG.warn("[job={}] no progress for {} s", jobId, (now - lastMoveMs) / 1000);
      listener.stalled(s);
    }
    return null;
  }

  /** Whether an event carries a valid MAC (always, without a key); one that does not is ignored. */
  private boolean authentic(ConsumerRecord<String, byte[]> r) {
    RecordAuth.Verdict v = auth.verify(r);
    if (v.ok()) {
      return true;
    }
    unauthenticatedEvents++;
    if (jobId.equals(r.key())) {
      long held = unauthenticatedLog.tryReport(clock.millis());
      if (held >= 0) {
        LOG.warn("[job={}] event {}-{}@{} ignored: {}{}", jobId, r.topic(), r.partition(), r.offset(), v.reason(),
            held > 0 ? " (and " + held + " more since the last report)" : "");
      }
    }
    return false;
  }

  /** Events ignored for a missing or bad MAC (any job's), when the cluster has a key. */
  public long unauthenticatedEvents() {
    return unauthenticatedEvents;
  }

  /** Runs until the job ends or {@link #cancel()}; null when cancelled. */
  public Outcome run() {
    if (!started) {
      start();
    }
    while (!cancelled) {
      Outcome o = runOnce();
      if (o != null) {
        return o;
      }
    }
    return null;
  }

  /** Makes {@link #run()} return soon; the job itself goes on (or is stopped by whoever owns the writer). */
  public void cancel() {
    cancelled = true;
    KafkaConsumer<String, byte[]> c = events;
    if (c != null) {
      c.wakeup();
    }
  }

  private boolean onEvent(JobEvent e) {
    boolean moved = false;
    if (e.getKind() == EventKind.EVENT_KIND_RANGE_DONE && e.getRangeIndex() >= 0 && e.getRangeIndex() < rangeCount) {
      moved = !complete.get((int) e.getRangeIndex());
      complete.set((int) e.getRangeIndex());
    }
    if (e.hasProgress()) {
      var p = e.getProgress();
      if (p.getGuestBytesDone() != guestBytesDone) {
        moved = true;
      }
      guestBytesDone = Math.max(guestBytesDone, p.getGuestBytesDone());
      hostBytes = p.getHostBytes();
      if (guestBytesAtStart < 0) {
        guestBytesAtStart = guestBytesDone;
      }
    }
    if (e.getKind() == EventKind.EVENT_KIND_STATE) {
      switch (e.getState()) {
        case JOB_STATE_DONE -> {
          complete.set(0, rangeCount);
          outcome = new Outcome(JobState.JOB_STATE_DONE, "");
        }
        case JOB_STATE_FAILED, JOB_STATE_CANCELLED -> outcome = new Outcome(e.getState(), e.getReason());
        default -> { }
      }
    }
    return moved;
  }

  /** Submits tasks for the next incomplete data ranges while fewer than the window are outstanding. */
  private void fillWindow() {
    List<Future<RecordMetadata>> sends = new ArrayList<>();
    int outstanding = outstanding();
    while (outstanding < config.window()) {
      int r = nextToSubmit();
      if (r < 0) {
        break;
      }
      submitted.set(r);
      sends.add(producer.send(auth.record(Topics.TASKS, Wire.rangeKey(jobId, r),
          partitioner.task(jobId, r).toByteArray())));
      tasksSent++;
      outstanding++;
    }
    maxOutstanding = Math.max(maxOutstanding, outstanding);
    await(sends, "submit tasks of job " + jobId);
  }

  private int nextToSubmit() {
    while (nextCandidate < rangeCount) {
      int r = nextCandidate++;
      if (data.get(r) && !complete.get(r) && !submitted.get(r)) {
        return r;
      }
    }
    return -1;
  }

  private JobStatus report() {
    long now = clock.millis();
    long total = partitioner.geometry().virtualSize();
    double secs = Math.max(0.001, (now - startedMs) / 1000.0);
    double rate = guestBytesAtStart < 0 ? 0 : (guestBytesDone - guestBytesAtStart) / secs;
    Duration eta = rate > 0 ? Duration.ofSeconds((long) ((total - guestBytesDone) / rate)) : null;
    JobStatus s = new JobStatus(rangeCount, complete.cardinality(), guestBytesDone, hostBytes, rate, eta,
        Duration.ofMillis(now - lastMoveMs));
    listener.progress(s);
    return s;
  }

  private static void await(List<Future<RecordMetadata>> sends, String what) {
    // flush() returns even when sends failed: every result is checked.
    for (Future<RecordMetadata> f : sends) {
      try {
        f.get(60, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new RetriableException("interrupted while trying to " + what, e);
      } catch (ExecutionException | TimeoutException e) {
        Throwable c = e instanceof ExecutionException ? e.getCause() : e;
        throw new RetriableException("could not " + what + ": " + c.getMessage(), c);
      }
    }
  }

  /** Ranges submitted and not yet known complete. */
  public int outstanding() {
    BitSet o = (BitSet) submitted.clone();
    o.andNot(complete);
    return o.cardinality();
  }

  /** The most ranges ever outstanding right after a submission. */
  public int maxOutstanding() {
    return maxOutstanding;
  }

  /** Ranges for which a task was submitted by this coordinator. */
  public BitSet submittedRanges() {
    return (BitSet) submitted.clone();
  }

  public int window() {
    return config.window();
  }

  public int holesSent() {
    return holesSent;
  }

  public int tasksSent() {
    return tasksSent;
  }

  public String jobId() {
    return jobId;
  }

  @Override
  public void close() {
    cancelled = true;
    if (producer != null) {
      producer.close(Duration.ofSeconds(5));
    }
    if (events != null) {
      events.close(Duration.ofSeconds(2));
    }
    if (store != null) {
      store.close();
    }
  }
}
