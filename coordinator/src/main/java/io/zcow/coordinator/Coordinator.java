package io.zcow.coordinator;

import io.zcow.BadInputException;
import io.zcow.RetriableException;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobPlan;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobSpecs;
import io.zcow.proto.JobState;
import io.zcow.proto.Progress;
import io.zcow.proto.RangeRun;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.JobBook;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.proto.kafka.ReportLimiter;
import io.zcow.proto.kafka.TopicReader;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Submits one job and follows it to its end. The coordinator partitions the disk and publishes the
 * job's plan in its JobSpec (ranges that are holes, the window); the writer paces the job from it
 * (issues the tasks, times and re-issues them) and publishes the job's lifecycle on the jobs
 * topic, so the job goes on when the coordinator detaches or dies. The coordinator follows that
 * lifecycle for the outcome, and the writer's PROGRESS events for progress.
 *
 * <p>Re-run with the same job id: a job still SUBMITTED or RUNNING is followed again (not
 * resubmitted); a FAILED or CANCELLED one is submitted again (the writer resumes a failed one from
 * its checkpoint); a DONE one is done at once.
 *
 * <p>Lifecycle: {@link #start()} once, then {@link #runOnce()} until it returns an outcome, then
 * {@link #close()}. Not thread safe, except {@link #cancel()}.
 */
public final class Coordinator implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Coordinator.class);
  /** A plan names at most this many zero runs (the spec stays far below the record limit); smaller holes are read. */
  static final int MAX_ZERO_RUNS = 16_384;

  /**
   * What a followed job ended with.
   *
   * @param refused the writer refused the job's input before writing anything (JobSpec.refused)
   */
  public record Outcome(JobState state, String reason, boolean refused) {
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
   * @param window ranges issued and not yet complete, at most (the writer keeps to it)
   * @param stallAfter no progress for this long reports the job stalled
   */
  public record Config(KafkaSettings kafka, TopicSetup.Plan plan, int window, Duration pollTimeout,
      Duration stallAfter) {
    public Config {
      Objects.requireNonNull(kafka, "kafka");
      Objects.requireNonNull(plan, "plan");
      if (window < 1 || window > 4096) {
        throw new IllegalArgumentException("window must be 1 to 4096: " + window);
      }
    }

    public static Config defaults(KafkaSettings kafka, String writerGroup, int window) {
      return new Config(kafka, TopicSetup.Plan.defaults(writerGroup), window, Duration.ofMillis(200),
          Duration.ofMinutes(3));
    }
  }

  private final Config config;
  private final JobSpec spec;
  private final Partitioner partitioner;
  private final Listener listener;
  private final Clock clock;
  private final String jobId;
  private final RecordAuth auth;
  private final JobBook book;
  private final ReportLimiter unauthenticatedLog = new ReportLimiter(10_000);

  private TopicReader jobs;
  private TopicReader events;
  private long unauthenticatedEvents;
  private boolean topicsReady;
  private boolean started;
  private volatile boolean cancelled;
  private int zeroRanges;
  private boolean submitted;
  private volatile boolean onCluster; // the job is on the jobs topic: found there, or published by start()

  private long startedMs;
  private long lastMoveMs;
  private boolean stallReported;
  private long guestBytesAtStart = -1;
  private long changedBytesTotal; // incremental jobs, as the writer reports them
  private long changedBytesDone;
  private long changedBytesAtStart;
  private long guestBytesDone;
  private long hostBytes;
  private long rangesDone;
  private Progress last = Progress.getDefaultInstance();
  private Outcome outcome;
  private JobState stateSeen;

  /**
   * @param spec the job, as it will be published (its created_at_ms, state and plan are set at start)
   * @param partitioner over the job's source; borrowed
   */
  public Coordinator(Config config, JobSpec spec, Partitioner partitioner, Listener listener, Clock clock) {
    this.config = Objects.requireNonNull(config, "config");
    this.spec = Objects.requireNonNull(spec, "spec");
    this.partitioner = Objects.requireNonNull(partitioner, "partitioner");
    this.listener = Objects.requireNonNull(listener, "listener");
    this.clock = Objects.requireNonNull(clock, "clock");
    this.jobId = spec.getJobId();
    this.auth = config.kafka().auth();
    this.book = new JobBook(auth);
  }

  /** Creates the topics and sets up the worker share group (also done by {@link #start()}). */
  public void setupTopics() {
    if (!topicsReady) {
      TopicSetup.ensure(config.kafka(), config.plan());
      topicsReady = true;
    }
  }

  /**
   * Reads the job's state on the jobs topic and submits the job unless it runs already; a job
   * the writer finished returns at once from {@link #runOnce()} as DONE.
   *
   * @throws BadInputException when the job exists with another source
   */
  public void start() {
    if (started) {
      throw new IllegalStateException("already started");
    }
    started = true;
    setupTopics();
    String client = "zcow-coordinator-" + jobId;
    jobs = new TopicReader(new KafkaConsumer<>(config.kafka().assignedConsumer(client)), Topics.JOBS,
        config.kafka().callTimeout());
    events = new TopicReader(new KafkaConsumer<>(config.kafka().assignedConsumer(client)), Topics.EVENTS,
        config.kafka().callTimeout());
    events.assign(true); // events of earlier runs of this job id are history: follow from now on
    jobs.readToEnd(config.kafka().callTimeout(), book::apply);
    startedMs = clock.millis();
    lastMoveMs = startedMs;
    Optional<JobSpec> earlier = book.get(jobId);
    earlier.ifPresent(this::checkSameSource);
    JobState was = earlier.map(JobSpec::getState).orElse(JobState.JOB_STATE_UNSPECIFIED);
    if (was == JobState.JOB_STATE_DONE) {
      LOG.info("[job={}] is done already", jobId);
      outcome = new Outcome(JobState.JOB_STATE_DONE, "", false);
      onCluster = true;
      return;
    }
    if (was == JobState.JOB_STATE_SUBMITTED || was == JobState.JOB_STATE_RUNNING || was == JobState.JOB_STATE_QUEUED) {
      LOG.info("[job={}] is {} already: following it", jobId, was);
      onCluster = true;
      return;
    }
    JobSpec published = spec.toBuilder().setCreatedAtMs(clock.millis()).setState(JobState.JOB_STATE_SUBMITTED)
        .setWriterEpoch(0).setReason("").setPlan(plan()).build();
    String problem = JobSpecs.problem(published);
    if (problem != null) {
      throw new BadInputException(problem);
    }
    try {
      KafkaProducer<String, byte[]> producer = new KafkaProducer<>(config.kafka().producer(client));
      try {
        producer.send(auth.record(Topics.JOBS, jobId, published.toByteArray())).get(60, TimeUnit.SECONDS);
      } finally {
        producer.close(Duration.ofSeconds(5));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RetriableException("interrupted while publishing job " + jobId, e);
    } catch (ExecutionException | TimeoutException e) {
      Throwable c = e instanceof ExecutionException ? e.getCause() : e;
      throw new RetriableException("could not publish job " + jobId + ": " + c.getMessage(), c);
    }
    book.put(published);
    submitted = true;
    onCluster = true;
    LOG.info("[job={}] submitted: {} ranges, {} of them holes, window {}", jobId, partitioner.rangeCount(),
        zeroRanges, config.window());
  }

  /** Hole ranges as runs (at most {@link #MAX_ZERO_RUNS}: the longest; the rest are read) and the window. */
  private JobPlan plan() {
    // An incremental job keeps the changed clusters it was given; its hole ranges are read like
    // any other (a worker reads only the changed clusters, and skips holes), so that an unchanged
    // cluster in a hole keeps no L2 entry.
    JobPlan.Builder b = spec.getPlan().toBuilder().clearZeroRanges().setWindow(config.window());
    if (JobSpecs.isIncremental(spec)) {
      zeroRanges = 0;
      return b.build();
    }
    List<RangeRun> runs = ZeroRuns.of(partitioner.dataRanges(), partitioner.rangeCount(), MAX_ZERO_RUNS);
    zeroRanges = (int) runs.stream().mapToLong(RangeRun::getCount).sum();
    return b.addAllZeroRanges(runs).build();
  }

  /**
   * Refuses to resume a job whose source is not the one it started from: the JobSpec already on
   * the jobs topic (if any, and not CANCELLED, whose image is gone) must carry the same source
   * identity. Specs without a fingerprint are not compared.
   */
  private void checkSameSource(JobSpec earlier) {
    if (!spec.hasSourceIdentity() || spec.getSourceIdentity().getFingerprint().isEmpty()
        || earlier.getState() == JobState.JOB_STATE_CANCELLED || !earlier.hasSourceIdentity()
        || earlier.getSourceIdentity().getFingerprint().isEmpty()) {
      return;
    }
    if (!earlier.getSourceIdentity().equals(spec.getSourceIdentity())) {
      throw new BadInputException("source changed since the job started ("
          + SourceFingerprint.describe(earlier.getSourceIdentity()) + "; now "
          + SourceFingerprint.describe(spec.getSourceIdentity()) + ")");
    }
  }

  /**
   * Follows the job's state and events once, reports progress.
   *
   * @return the outcome once the job is DONE, FAILED or CANCELLED; null while it runs
   */
  public Outcome runOnce() {
    if (!started) {
      throw new IllegalStateException("not started");
    }
    if (outcome != null || cancelled) {
      return outcome;
    }
    boolean[] moved = {false};
    try {
      jobs.poll(Duration.ZERO, book::apply);
      events.poll(config.pollTimeout(), r -> moved[0] |= onEvent(r));
    } catch (WakeupException e) {
      return null; // cancel()
    }
    JobSpec now = book.get(jobId).orElse(null);
    // The book was read to its end before this run submitted, and holds what it published since:
    // a terminal state here is this submission's (or, when following, the job's latest).
    if (now != null && JobSpecs.isTerminal(now.getState())) {
      if (now.getState() == JobState.JOB_STATE_DONE) {
        rangesDone = partitioner.rangeCount();
      }
      awaitStateEvent(now.getState());
      outcome = new Outcome(now.getState(), now.getReason(), now.getRefused());
      report();
      return outcome;
    }
    long t = clock.millis();
    if (moved[0]) {
      lastMoveMs = t;
      stallReported = false;
    }
    JobStatus s = report();
    if (!stallReported && t - lastMoveMs >= config.stallAfter().toMillis()) {
      stallReported = true;
      LOG.warn("[job={}] no progress for {} s", jobId, (t - lastMoveMs) / 1000);
      listener.stalled(s);
    }
    return null;
  }

  /**
   * The writer publishes a job's end on the jobs topic, then its STATE event with the last
   * figures: wait a little for that event, so the figures of the end are the writer's last.
   */
  private void awaitStateEvent(JobState end) {
    long deadline = System.nanoTime() + Duration.ofSeconds(2).toNanos();
    stateSeen = null;
    while (stateSeen != end && System.nanoTime() - deadline < 0) {
      events.poll(Duration.ofMillis(50), this::onEvent);
    }
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

  /** Makes {@link #run()} return soon; the job itself goes on (the writer paces it). */
  public void cancel() {
    cancelled = true;
    TopicReader e = events;
    if (e != null) {
      e.wakeup();
    }
  }

  private boolean onEvent(ConsumerRecord<String, byte[]> r) {
    RecordAuth.Verdict v = auth.verify(r);
    if (!v.ok()) {
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
    if (!(Wire.jobEvent(r.value()) instanceof Wire.Decoded.Ok<JobEvent> ok) || !ok.value().getJobId().equals(jobId)) {
      return false;
    }
    JobEvent e = ok.value();
    if (e.getKind() == EventKind.EVENT_KIND_STATE) {
      stateSeen = e.getState();
    }
    if (e.getKind() != EventKind.EVENT_KIND_PROGRESS && e.getKind() != EventKind.EVENT_KIND_STATE) {
      return e.getKind() == EventKind.EVENT_KIND_RANGE_DONE;
    }
    if (!e.hasProgress()) {
      return false;
    }
    var p = e.getProgress();
    last = p;
    boolean moved = p.getGuestBytesDone() != guestBytesDone || p.getRangesDone() != rangesDone
        || p.getChangedBytesDone() != changedBytesDone;
    guestBytesDone = Math.max(guestBytesDone, p.getGuestBytesDone());
    changedBytesTotal = p.getChangedBytesTotal();
    changedBytesDone = p.getChangedBytesDone();
    rangesDone = Math.max(rangesDone, p.getRangesDone());
    hostBytes = p.getHostBytes();
    if (guestBytesAtStart < 0) {
      guestBytesAtStart = guestBytesDone;
      changedBytesAtStart = changedBytesDone;
    }
    return moved;
  }

  /** Events ignored for a missing or bad MAC (any job's), when the cluster has a key. */
  public long unauthenticatedEvents() {
    return unauthenticatedEvents;
  }

  private JobStatus report() {
    long now = clock.millis();
    boolean incremental = changedBytesTotal > 0;
    long total = incremental ? changedBytesTotal : partitioner.geometry().virtualSize();
    long done = incremental ? changedBytesDone : guestBytesDone;
    long atStart = incremental ? changedBytesAtStart : guestBytesAtStart;
    double secs = Math.max(0.001, (now - startedMs) / 1000.0);
    double rate = guestBytesAtStart < 0 ? 0 : (done - atStart) / secs;
    Duration eta = rate > 0 ? Duration.ofSeconds((long) ((total - done) / rate)) : null;
    JobStatus s = new JobStatus(partitioner.rangeCount(), (int) rangesDone, guestBytesDone, hostBytes, rate, eta,
        Duration.ofMillis(now - lastMoveMs), changedBytesTotal, changedBytesDone);
    listener.progress(s);
    return s;
  }

  /** Whether this coordinator published the job (false when it found it running and only follows). */
  public boolean submitted() {
    return submitted;
  }

  /**
   * Whether the job is on the cluster: {@link #start()} found it there or published it. Until then
   * nothing runs, and a detaching caller has nothing to leave behind. Any thread may ask.
   */
  public boolean onCluster() {
    return onCluster;
  }

  /** The writer's latest figures of the job (tasks issued, most ranges outstanding, …). */
  public Progress lastProgress() {
    return last;
  }

  /** Ranges the plan declared holes. */
  public int zeroRanges() {
    return zeroRanges;
  }

  public int window() {
    return config.window();
  }

  public String jobId() {
    return jobId;
  }

  @Override
  public void close() {
    cancelled = true;
    for (TopicReader r : new TopicReader[] {jobs, events}) {
      if (r != null) {
        try {
          r.close();
        } catch (RuntimeException e) {
          LOG.debug("[job={}] closing a reader: {}", jobId, e.toString());
        }
      }
    }
  }
}
