package io.zcow.writer;

import io.zcow.BadInputException;
import io.zcow.CorruptException;
import io.zcow.TargetFullException;
import io.zcow.TargetLockedException;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobSpecs;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeLayout;
import io.zcow.proto.RangeRun;
import io.zcow.proto.WriterCheckpoint;
import io.zcow.proto.kafka.JobBook;
import io.zcow.proto.kafka.TopicReader;
import io.zcow.qcow2.Checkpoint;
import io.zcow.qcow2.ImageOptions;
import io.zcow.qcow2.ImageWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The jobs of this writer's group, as the jobs topic and the group's ZooKeeper state tell them:
 * follows the specs (through the shared {@link JobBook}), opens the image of each running job
 * (resumes it from its committed checkpoint, or creates it), and hands ends (cancel, refused
 * specs) to {@link Transitions}. A job whose image is still locked by the previous leader waits
 * in {@link #pendingOpen()} and is tried again each turn.
 *
 * <p>Not thread safe: the term's thread.
 */
final class JobTable {
  private static final Logger LOG = LoggerFactory.getLogger(JobTable.class);
  private static final Duration READ_TIMEOUT = Duration.ofSeconds(30);

  private final WriterConfig config;
  private final WriterZk zk;
  private final TopicReader reader;
  private final JobBook book;
  private final TargetConfinement confinement;
  private final WriterOutput out;
  private final BooleanSupplier mayWrite;
  private final LongSupplier now;
  private final RangePacer.Timing timing;
  private Transitions transitions;
  private final Map<String, JobRun> runs = new LinkedHashMap<>();
  private final Map<String, JobSpec> pendingOpen = new LinkedHashMap<>();
  private long lastLockWaitLog = Long.MIN_VALUE / 2;

  JobTable(WriterConfig config, WriterZk zk, TopicReader reader, WriterOutput out, BooleanSupplier mayWrite,
      LongSupplier now) {
    this.config = config;
    this.zk = zk;
    this.reader = reader;
    this.book = new JobBook(config.auth());
    this.confinement = new TargetConfinement(config.targetRoot());
    this.out = out;
    this.mayWrite = mayWrite;
    this.now = now;
    this.timing = new RangePacer.Timing(config.rangeTimeout().toMillis(), config.startTimeout().toMillis(),
        config.maxRequeues());
  }

  void transitions(Transitions t) {
    this.transitions = t;
  }

  TargetConfinement confinement() {
    return confinement;
  }

  /** Reads the jobs topic up to its end as of now, acting on every spec of this group. */
  void readToEnd() {
    reader.readToEnd(READ_TIMEOUT, r -> onApplied(book.apply(r), r.offset()));
  }

  /** Acts on the specs published since the last call (waits at most {@code timeout}). */
  void poll(Duration timeout) {
    reader.poll(timeout, r -> onApplied(book.apply(r), r.offset()));
  }

  private void onApplied(JobBook.Applied a, long offset) {
    if (a instanceof JobBook.Applied.Spec s) {
      onSpec(s.spec());
    } else if (a instanceof JobBook.Applied.Ignored i) {
      LOG.warn("[group={}] {} record at offset {} ignored: {}", config.group(), config.jobsTopic(), offset, i.reason());
    }
  }

  Optional<JobSpec> spec(String job) {
    return book.get(job);
  }

  /** The job's run in this term; the jobs topic is read again first when its spec is unknown. */
  JobRun known(String job) {
    if (book.get(job).isEmpty()) {
      readToEnd();
    }
    return runs.get(job);
  }

  boolean isPendingOpen(String job) {
    return pendingOpen.containsKey(job);
  }

  Map<String, JobSpec> pendingOpen() {
    return pendingOpen;
  }

  List<JobRun> open() {
    List<JobRun> open = new ArrayList<>();
    for (JobRun r : runs.values()) {
      if (r.state == JobRun.State.OPEN && r.image != null) {
        open.add(r);
      }
    }
    return open;
  }

  List<JobRun> all() {
    return List.copyOf(runs.values());
  }

  private void onSpec(JobSpec spec) {
    if (!spec.getWriterGroup().equals(config.group())) {
      return;
    }
    String id = spec.getJobId();
    String problem = JobSpecs.problem(spec);
    JobRun run = runs.get(id);
    if (spec.getState() == JobState.JOB_STATE_CANCELLED) {
      pendingOpen.remove(id);
      if (run == null || run.state == JobRun.State.OPEN || run.state == JobRun.State.FAILED) {
        if (run != null || zk.terminalState(id).map(t -> t.state() == JobState.JOB_STATE_FAILED).orElse(true)) {
          runs.put(id, transitions.cancel(spec, run));
        }
      }
      return;
    }
    if (JobSpecs.isTerminal(spec.getState())) {
      return; // an end this writer (or an earlier leader) published
    }
    if (run != null && (run.state == JobRun.State.OPEN || run.spec.getCreatedAtMs() == spec.getCreatedAtMs())) {
      return; // running already, or this submission ended in this term
    }
    Optional<WriterZk.TerminalState> terminal = zk.terminalState(id);
    boolean resumeFailed = false;
    if (terminal.isPresent()) {
      WriterZk.TerminalState t = terminal.get();
      if (t.createdAtMs() == spec.getCreatedAtMs() || t.state() != JobState.JOB_STATE_FAILED) {
        if (t.createdAtMs() == spec.getCreatedAtMs()) {
          out.state(spec, t.state(), t.reason()); // the end an earlier leader recorded but did not publish
        }
        return;
      }
      LOG.info("[job={}] submitted again after it failed: resuming from its checkpoint", id);
      resumeFailed = true;
    }
    if (problem != null) {
      runs.put(id, transitions.failUnopened(spec, "bad job: " + problem));
      return;
    }
    pendingOpen.put(id, spec.toBuilder().setState(resumeFailed ? JobState.JOB_STATE_SUBMITTED : spec.getState()).build());
    retryPendingOpens();
  }

  /** Tries to open every job still waiting; false while one waits for the old leader's lock. */
  boolean retryPendingOpens() {
    for (JobSpec spec : List.copyOf(pendingOpen.values())) {
      if (!mayWrite.getAsBoolean()) {
        throw new DeposedException("[group=" + config.group() + "] leadership lost: writing stops", null);
      }
      try {
        open(spec);
        pendingOpen.remove(spec.getJobId());
      } catch (TargetLockedException e) {
        long t = now.getAsLong();
        if (t - lastLockWaitLog >= 10_000) {
          lastLockWaitLog = t;
          LOG.info("[job={}] waiting for the previous writer to release the target: {}", spec.getJobId(), e.getMessage());
        }
      }
    }
    return pendingOpen.isEmpty();
  }

  /** Opens the job's image: resumes it from the committed checkpoint, or creates it. */
  private void open(JobSpec spec) {
    String id = spec.getJobId();
    Path target;
    ImageOptions options;
    try {
      target = confinement.resolve(spec.getTargetPath());
      options = JobRun.optionsOf(spec, config.cacheBytes(), config.verifyPayloads());
    } catch (BadInputException e) {
      runs.put(id, transitions.failUnopened(spec, e.getMessage()));
      return;
    }
    JobRun run = new JobRun(spec, target, RangeLayout.of(spec), options);
    Path part = ImageWriter.partPath(target);
    Optional<WriterCheckpoint> cp = zk.checkpoint(id);
    try {
      if (cp.isPresent()) {
        if (Files.exists(part)) {
          run.image = ImageWriter.resume(target, options, Checkpoint.fromBytes(cp.get().getImageCheckpoint().toByteArray()))
              .guardWrites(mayWrite);
          LOG.info("{} resumed from the checkpoint of epoch {}", run.tag(-1), cp.get().getLeaderEpoch());
        } else if (Files.exists(target)) {
          runs.put(id, transitions.doneEarlier(spec));
          return;
        } else {
          runs.put(id, transitions.failUnopened(spec, "the checkpoint names " + part + " but it is gone"));
          return;
        }
      } else {
        if (Files.exists(part)) {
          PartFiles.removeUnlocked(part, run.tag(-1)); // created after the last commit by a writer that died
        }
        if (Files.exists(target)) {
          runs.put(id, transitions.failUnopened(spec, "target " + spec.getTargetPath() + " already exists"));
          return;
        }
        run.image = ImageWriter.create(target, options).guardWrites(mayWrite);
        LOG.info("{} created {} ({} ranges)", run.tag(-1), part.getFileName(), run.layout.ranges());
      }
    } catch (CorruptException | TargetFullException e) {
      runs.put(id, transitions.failUnopened(spec, e.getMessage()));
      return;
    }
    run.pacer = new RangePacer(spec, run.layout, WriterConfig.DEFAULT_WINDOW, timing);
    for (RangeRun zero : run.pacer.zeroRuns()) {
      long first = run.layout.firstCluster(zero.getFirst());
      run.image.putZeros(first, run.layout.endCluster(zero.getFirst() + zero.getCount() - 1) - first);
    }
    run.complete = run.image.completeRanges();
    if (cp.isPresent() && spec.getState() == JobState.JOB_STATE_RUNNING) {
      run.pacer.restore(cp.get().getIssuedList(), run.complete, now.getAsLong());
    }
    runs.put(id, run);
    out.state(spec, JobState.JOB_STATE_RUNNING, "");
    out.event(id, EventKind.EVENT_KIND_STATE, JobState.JOB_STATE_RUNNING, -1, "", run.progress(), null);
  }

  void close() {
    try {
      reader.close();
    } catch (RuntimeException e) {
      LOG.warn("[group={}] closing the {} reader: {}", config.group(), config.jobsTopic(), e.toString());
    }
  }
}
