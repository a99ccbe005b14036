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
import io.zcow.qcow2.BackingFile;
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
  private final PreviousChecks previousChecks = new PreviousChecks();
  /** Jobs waiting for room in the cache budget, in the order they came. */
  private final Map<String, JobSpec> queued = new LinkedHashMap<>();
  /** While the term recovers, every job waits here: those with a checkpoint are admitted first. */
  private boolean recovering;
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

  /**
   * Recovers: reads the jobs topic to its end, then admits the jobs that ran before (they have a
   * checkpoint, and chunks of theirs may be on the topic) ahead of new ones.
   */
  void recover() {
    recovering = true;
    try {
      readToEnd();
    } finally {
      recovering = false;
    }
    admitQueued();
  }

  /** Reads the jobs topic up to its end as of now, acting on every spec of this group. */
  void readToEnd() {
    reader.readToEnd(READ_TIMEOUT, r -> onApplied(book.apply(r), r.offset()));
  }

  /** Whether the job waits for room in the cache budget. */
  boolean isQueued(String job) {
    return queued.containsKey(job);
  }

  /** How many jobs wait for room in the cache budget. */
  int queuedCount() {
    return queued.size();
  }

  /** Opens queued jobs while the budget has room: jobs that ran before first, then in order. */
  void admitQueued() {
    while (!queued.isEmpty() && admitted() < config.maxRunningJobs()) {
      JobSpec next = queued.values().stream().filter(s -> zk.hasCheckpoint(s.getJobId())).findFirst()
          .orElse(queued.values().iterator().next());
      queued.remove(next.getJobId());
      pendingOpen.put(next.getJobId(), next);
    }
    for (JobSpec s : queued.values()) {
      if (s.getState() != JobState.JOB_STATE_QUEUED) {
        JobSpec waiting = s.toBuilder().setState(JobState.JOB_STATE_QUEUED).build();
        queued.put(s.getJobId(), waiting);
        String why = "waiting for room: " + admitted() + " jobs running, each with " + (config.jobCacheBytes() >> 20)
            + " MiB of the writer's " + (config.cacheBytes() >> 20) + " MiB cache";
        LOG.info("[job={}] QUEUED: {}", s.getJobId(), why);
        out.state(s, JobState.JOB_STATE_QUEUED, why);
        out.event(s.getJobId(), EventKind.EVENT_KIND_STATE, JobState.JOB_STATE_QUEUED, -1, why, null, null);
      }
    }
    retryPendingOpens();
  }

  private int admitted() {
    return open().size() + pendingOpen.size();
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
      previousChecks.forget(id);
      queued.remove(id);
      if (run == null || run.state == JobRun.State.OPEN || run.state == JobRun.State.FAILED) {
        if (run != null || zk.terminalState(id).map(t -> t.state() == JobState.JOB_STATE_FAILED).orElse(true)) {
          runs.put(id, transitions.cancel(spec, run));
        }
      }
      return;
    }
    if (JobSpecs.isTerminal(spec.getState()) || spec.getState() == JobState.JOB_STATE_QUEUED) {
      return; // a state this writer (or an earlier leader) published
    }
    JobSpec waiting = queued.get(id);
    if (waiting != null) {
      if (waiting.getCreatedAtMs() == spec.getCreatedAtMs() && spec.getState() == JobState.JOB_STATE_RUNNING) {
        // The same submission, already running under an earlier leader (read while recovering):
        // it opens as running, so its checkpoint's issued ranges keep their attempt counts.
        queued.put(id, spec);
      }
      return;
    }
    if (run != null && (run.state == JobRun.State.OPEN || run.spec.getCreatedAtMs() == spec.getCreatedAtMs())) {
      return; // running already, or this submission ended in this term
    }
    Optional<WriterZk.TerminalState> terminal = zk.terminalState(id);
    boolean resumeFailed = false;
    if (terminal.isPresent()) {
      WriterZk.TerminalState t = terminal.get();
      if (t.createdAtMs() == spec.getCreatedAtMs() || t.state() == JobState.JOB_STATE_DONE) {
        out.state(spec, t.state(), t.reason(), t.refused()); // an end an earlier leader recorded but did not publish
        return;
      }
      // Submitted again: a FAILED job resumes from its checkpoint; a CANCELLED one left nothing
      // behind (no .part, no checkpoint), so it starts afresh.
      LOG.info("[job={}] submitted again after it was {}", id, t.state());
      resumeFailed = true;
    }
    if (problem != null) {
      runs.put(id, transitions.refuse(spec, "bad job: " + problem));
      return;
    }
    JobSpec admitted = spec.toBuilder().setState(resumeFailed ? JobState.JOB_STATE_SUBMITTED : spec.getState()).build();
    if (recovering || admitted() >= config.maxRunningJobs()) {
      queued.put(id, admitted);
      if (!recovering) {
        admitQueued();
      }
      return;
    }
    pendingOpen.put(id, admitted);
    retryPendingOpens();
  }

  /**
   * Tries to open every job still waiting; false while one waits for the old leader's lock. A job
   * whose previous image is still being checked waits too, without holding up the others.
   */
  boolean retryPendingOpens() {
    boolean lockWait = false;
    for (JobSpec spec : List.copyOf(pendingOpen.values())) {
      if (!mayWrite.getAsBoolean()) {
        throw new DeposedException("[group=" + config.group() + "] leadership lost: writing stops", null);
      }
      try {
        if (open(spec)) {
          pendingOpen.remove(spec.getJobId());
        }
      } catch (TargetLockedException e) {
        lockWait = true;
        long t = now.getAsLong();
        if (t - lastLockWaitLog >= 10_000) {
          lastLockWaitLog = t;
          LOG.info("[job={}] waiting for the previous writer to release the target: {}", spec.getJobId(), e.getMessage());
        }
      }
    }
    return !lockWait;
  }

  /**
   * Opens the job's image: resumes it from the committed checkpoint, or creates it; false while
   * its previous image is being checked (asked again next turn), true once it is open or ended.
   */
  private boolean open(JobSpec spec) {
    String id = spec.getJobId();
    Path target;
    Path previous = null;
    ImageOptions options;
    try {
      target = confinement.resolve(spec.getTargetPath());
      options = JobRun.optionsOf(spec, config.jobCacheBytes(), config.verifyPayloads());
      if (JobSpecs.isIncremental(spec)) {
        previous = confinement.resolveExisting(spec.getBackingPath());
        // Its manifest too, for a job by digest (PreviousChecks: off the term's thread).
        BackingFile backing = previousChecks.result(spec, previous, target, options.geometry());
        if (backing == null) {
          return false;
        }
        options = options.withBacking(backing);
      }
    } catch (BadInputException e) {
      runs.put(id, transitions.refuse(spec, e.getMessage()));
      return true;
    }
    Optional<WriterCheckpoint> cp;
    try {
      cp = zk.checkpoint(id);
    } catch (CorruptException e) {
      runs.put(id, transitions.failUnopened(spec, "its checkpoint in ZooKeeper is damaged (" + e.getMessage()
          + "): cancel the job and submit it again to start afresh"));
      return true;
    }
    JobRun run = new JobRun(spec, target, RangeLayout.of(spec), options);
    try {
      if (!openImage(run, cp)) {
        return true;
      }
    } catch (TargetLockedException e) {
      throw e;
    } catch (RuntimeException e) {
      if (Isolation.endsTheTerm(e)) {
        throw e;
      }
      runs.put(id, transitions.failUnopened(spec, Isolation.reason(e)));
      return true;
    }
    run.pacer = new RangePacer(spec, run.layout, WriterConfig.DEFAULT_WINDOW, timing).onlyChanged(run.changes);
    if (spec.getByDigest()) {
      run.pacer.byDigest(previous, reason -> run.requestEnd(JobState.JOB_STATE_FAILED, reason));
    }
    run.markUnchangedRanges(); // before the zero ranges: an unchanged cluster keeps no entry
    for (RangeRun zero : run.pacer.zeroRuns()) {
      long first = run.layout.firstCluster(zero.getFirst());
      run.image.putZeros(first, run.layout.endCluster(zero.getFirst() + zero.getCount() - 1) - first);
    }
    run.complete = run.image.completeRanges();
    if (cp.isPresent() && spec.getState() == JobState.JOB_STATE_RUNNING) {
      run.pacer.restore(cp.get().getIssuedList(), run.complete, now.getAsLong());
    }
    run.countUnchanged();
    runs.put(id, run);
    out.state(spec, JobState.JOB_STATE_RUNNING, "");
    out.event(id, EventKind.EVENT_KIND_STATE, JobState.JOB_STATE_RUNNING, -1, "", run.progress(), null);
    return true;
  }

  /**
   * Resumes the image from its checkpoint (from the one before when the newest state file is
   * damaged), or creates it; false when the job ended instead (recorded).
   */
  private boolean openImage(JobRun run, Optional<WriterCheckpoint> cp) {
    JobSpec spec = run.spec;
    Path part = ImageWriter.partPath(run.target);
    if (cp.isPresent()) {
      if (Files.exists(part)) {
        run.image = resume(run, cp.get()).guardWrites(mayWrite);
        return true;
      }
      if (Files.exists(run.target)) {
        runs.put(run.id, transitions.doneEarlier(spec));
      } else {
        runs.put(run.id, transitions.failUnopened(spec, "the checkpoint names " + part + " but it is gone"));
      }
      return false;
    }
    if (Files.exists(part)) {
      PartFiles.removeUnlocked(part, run.tag(-1)); // created after the last commit by a writer that died
    }
    if (Files.exists(run.target)) {
      runs.put(run.id, transitions.refuse(spec, "target " + spec.getTargetPath() + " already exists"));
      return false;
    }
    // Exactly at the confined path: a directory swapped for a symlink since the check is refused.
    run.image = ImageWriter.create(run.target, run.options, true).guardWrites(mayWrite);
    LOG.info("{} created {} ({} ranges)", run.tag(-1), part.getFileName(), run.layout.ranges());
    return true;
  }

  /** Resumes at the committed checkpoint, or at the one before when its state file is damaged. */
  private ImageWriter resume(JobRun run, WriterCheckpoint cp) {
    try {
      ImageWriter image = ImageWriter.resume(run.target, run.options, Checkpoint.fromBytes(cp.getImageCheckpoint()
          .toByteArray()), true);
      run.committedImageCheckpoint = cp.getImageCheckpoint().toByteArray();
      LOG.info("{} resumed from the checkpoint of epoch {}", run.tag(-1), cp.getLeaderEpoch());
      return image;
    } catch (CorruptException e) {
      if (cp.getPreviousImageCheckpoint().isEmpty()) {
        throw e;
      }
      LOG.warn("{} its newest checkpoint cannot be used ({}): resuming from the one before", run.tag(-1),
          e.getMessage());
      ImageWriter image = ImageWriter.resume(run.target, run.options, Checkpoint.fromBytes(cp
          .getPreviousImageCheckpoint().toByteArray()), true);
      run.committedImageCheckpoint = cp.getPreviousImageCheckpoint().toByteArray();
      return image;
    }
  }

  void close() {
    previousChecks.close();
    try {
      reader.close();
    } catch (RuntimeException e) {
      LOG.warn("[group={}] closing the {} reader: {}", config.group(), config.jobsTopic(), e.toString());
    }
  }
}
