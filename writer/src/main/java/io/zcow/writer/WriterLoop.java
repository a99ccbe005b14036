package io.zcow.writer;

import io.zcow.BadInputException;
import io.zcow.CorruptException;
import io.zcow.RetriableException;
import io.zcow.TargetFullException;
import io.zcow.TargetLockedException;
import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.PartitionOffset;
import io.zcow.proto.Progress;
import io.zcow.proto.RangeTask;
import io.zcow.proto.RecordRef;
import io.zcow.proto.Wire;
import io.zcow.proto.WriterCheckpoint;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.proto.kafka.ReportLimiter;
import io.zcow.qcow2.Checkpoint;
import io.zcow.qcow2.ClusterKind;
import io.zcow.qcow2.DirectFile;
import io.zcow.qcow2.ImageOptions;
import io.zcow.qcow2.ImageStats;
import io.zcow.qcow2.ImageWriter;
import io.zcow.qcow2.PutResult;
import java.io.Closeable;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One leadership term of a writer: recover from the committed checkpoints, then consume the
 * group's chunks topic into images until the term ends. A new term (after any re-election or
 * reconnect) builds a new loop, so nothing is ever carried over from memory.
 *
 * <p>Each {@link #runOnce()} follows {@code zcow.jobs} and {@code zcow.tasks}, processes one poll
 * of chunk records (validate, then put into the job's {@link ImageWriter}), finishes complete
 * jobs, re-queues stalled ranges, sends progress and checkpoints when the interval has passed.
 * Before every write it asks {@code stillLeader}; when that says no, it stops writing and throws
 * {@link DeposedException}; {@link #close()} then closes the images (their writes in flight end,
 * and the fence lock goes with their file).
 *
 * <p>Not thread safe: one thread calls {@link #start()}, {@link #runOnce()} and {@link #close()}.
 *
 * <p>The coordinator must create the chunks topic with small segments ({@code segment.bytes} of
 * a few tens of MiB): the writer trims consumed records with {@code deleteRecords} below the last
 * committed checkpoint, but the broker frees space only by deleting whole, inactive segments.
 */
public final class WriterLoop implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(WriterLoop.class);
  private static final Duration POLL = Duration.ofMillis(200);
  private static final Duration KAFKA_CALL = Duration.ofSeconds(30);
  /** At most one event (and warning) about unauthenticated records per this many milliseconds. */
  static final long UNAUTHENTICATED_REPORT_MILLIS = 1000;

  /** Lifecycle of a term. */
  public enum State { NEW, RECOVERING, RUNNING, CLOSED }

  private final WriterConfig config;
  private final WriterZk zk;
  private final Clock clock;
  private final BooleanSupplier stillLeader;
  private final WriterMetrics metrics;
  private final TargetConfinement confinement;
  private final String origin;
  private final KafkaConsumer<String, byte[]> jobsConsumer;
  private final KafkaConsumer<String, byte[]> tasksConsumer;
  private final KafkaConsumer<String, byte[]> chunksConsumer;
  private final KafkaProducer<String, byte[]> producer;
  private final Admin admin;
  private final RecordAuth auth;
  private final ReportLimiter unauthenticatedReports = new ReportLimiter(UNAUTHENTICATED_REPORT_MILLIS);

  private State state = State.NEW;
  /** Latest JobSpec of every job seen on the jobs topic (all groups). */
  private final Map<String, JobSpec> specs = new HashMap<>();
  /** Jobs of this group this term has opened (or ended), by id. */
  private final Map<String, JobRun> runs = new LinkedHashMap<>();
  /** Jobs of this group whose image could not be opened yet (the old leader still holds the lock). */
  private final Map<String, JobSpec> pendingOpen = new LinkedHashMap<>();
  private List<TopicPartition> chunkPartitions = List.of();
  private long lastCheckpointMs;
  private long lastProgressMs;
  private long lastLockWaitLogMs = Long.MIN_VALUE / 2;

  /**
   * @param stillLeader asked before every write: false once ZooKeeper said SUSPENDED or LOST
   */
  WriterLoop(WriterConfig config, WriterZk zk, Clock clock, BooleanSupplier stillLeader, WriterMetrics metrics) {
    this.config = config;
    this.zk = zk;
    this.clock = clock;
    this.stillLeader = stillLeader;
    this.metrics = metrics;
    this.confinement = new TargetConfinement(config.targetRoot());
    this.origin = "writer@" + hostName() + "/" + config.group();
    String id = "zcow-writer-" + config.group();
    this.jobsConsumer = KafkaClients.assignedConsumer(config, id + "-jobs", false);
    this.tasksConsumer = KafkaClients.assignedConsumer(config, id + "-tasks", false);
    this.chunksConsumer = KafkaClients.assignedConsumer(config, id + "-chunks", true);
    this.producer = KafkaClients.producer(config, id);
    this.admin = KafkaClients.admin(config);
    this.auth = config.auth();
  }

  public State state() {
    return state;
  }

  /**
   * Recovers: reads the jobs topic to its end, opens (resumes or creates) the images of this
   * group's running jobs, and positions the chunks consumer at the group's committed offsets (the
   * beginning when there are none). Jobs whose image is still locked by the old leader are
   * retried by {@link #runOnce()}, which reads no chunk until all are open.
   */
  public void start() {
    if (state != State.NEW) {
      throw new IllegalStateException("WriterLoop.start() called in state " + state);
    }
    state = State.RECOVERING;
    assignAll(jobsConsumer, config.jobsTopic());
    assignAll(tasksConsumer, config.tasksTopic());
    chunkPartitions = assignAll(chunksConsumer, config.chunksTopic());
    Optional<WriterCheckpoint> offsets = zk.groupOffsets();
    Map<Integer, Long> committed = new HashMap<>();
    offsets.ifPresent(cp -> cp.getOffsetsList().forEach(po -> committed.put(po.getPartition(), po.getOffset())));
    List<TopicPartition> fromStart = new ArrayList<>();
    for (TopicPartition tp : chunkPartitions) {
      Long o = committed.get(tp.partition());
      if (o == null) {
        fromStart.add(tp);
      } else {
        chunksConsumer.seek(tp, o);
      }
    }
    chunksConsumer.seekToBeginning(fromStart);
    LOG.info("[group={}] epoch {}: recovering; chunks from {}", config.group(), zk.epoch(),
        committed.isEmpty() ? "the beginning" : committed);
    readJobsToEnd();
    lastCheckpointMs = clock.millis();
    lastProgressMs = clock.millis();
  }

  /**
   * One turn of the loop; returns once a poll of chunks (at most about 200 ms of waiting) is done.
   *
   * @throws DeposedException when leadership was lost; close this loop and start a new term
   */
  public void runOnce() {
    if (state == State.NEW || state == State.CLOSED) {
      throw new IllegalStateException("runOnce() in state " + state);
    }
    checkLeader();
    pollJobs(Duration.ZERO);
    retryPendingOpens();
    if (!pendingOpen.isEmpty()) {
      sleep(POLL);
      return;
    }
    if (state == State.RECOVERING) {
      state = State.RUNNING;
      LOG.info("[group={}] epoch {}: running ({} jobs open)", config.group(), zk.epoch(), openRuns().size());
    }
    pollTasks();
    Set<JobRun> touched = new java.util.HashSet<>();
    ConsumerRecords<String, byte[]> records = chunksConsumer.poll(POLL);
    for (ConsumerRecord<String, byte[]> r : records) {
      JobRun run = handleChunk(r);
      if (run != null) {
        touched.add(run);
      }
    }
    long now = clock.millis();
    for (JobRun run : touched) {
      if (run.isOpen()) {
        noteCompletedRanges(run, now);
      }
    }
    for (JobRun run : openRuns()) {
      if (run.image.isComplete()) {
        complete(run);
      }
    }
    checkStalledRanges(now);
    if (now - lastProgressMs >= config.progressInterval().toMillis()) {
      lastProgressMs = now;
      for (JobRun run : openRuns()) {
        event(run, EventKind.EVENT_KIND_PROGRESS, JobState.JOB_STATE_RUNNING, -1, "", run.progress(0), null);
      }
      metrics.gauges(openRuns());
    }
    if (now - lastCheckpointMs >= config.checkpointInterval().toMillis()) {
      checkpointAll();
    }
  }

  /** Runs {@link #runOnce()} until leadership is lost (DeposedException) or the thread is interrupted. */
  public void runUntilDeposed() {
    while (!Thread.currentThread().isInterrupted()) {
      runOnce();
    }
  }

  // ---- jobs ---------------------------------------------------------------------------------

  private void readJobsToEnd() {
    Map<TopicPartition, Long> end = jobsConsumer.endOffsets(jobsConsumer.assignment(), KAFKA_CALL);
    long deadline = System.nanoTime() + KAFKA_CALL.toNanos();
    while (true) {
      boolean atEnd = true;
      for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
        if (jobsConsumer.position(e.getKey(), KAFKA_CALL) < e.getValue()) {
          atEnd = false;
        }
      }
      if (atEnd) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new RetriableException("cannot read " + config.jobsTopic() + " to its end within " + KAFKA_CALL, null);
      }
      pollJobs(Duration.ofMillis(100));
    }
  }

  private void pollJobs(Duration timeout) {
    for (ConsumerRecord<String, byte[]> r : jobsConsumer.poll(timeout)) {
      if (!authentic(r)) {
        continue;
      }
      Wire.Decoded<JobSpec> d = Wire.jobSpec(r.value());
      if (d instanceof Wire.Decoded.Ok<JobSpec> ok) {
        onJobSpec(ok.value());
      } else if (r.value() != null) {
        LOG.warn("[group={}] ignoring a bad JobSpec at {}-{}@{}: {}", config.group(), r.topic(), r.partition(),
            r.offset(), ((Wire.Decoded.Bad<JobSpec>) d).reason());
      }
    }
  }

  private void onJobSpec(JobSpec spec) {
    String id = spec.getJobId();
    specs.put(id, spec);
    if (!spec.getWriterGroup().equals(config.group())) {
      return;
    }
    JobRun run = runs.get(id);
    if (spec.getState() == JobState.JOB_STATE_CANCELLED) {
      cancel(id, run);
      return;
    }
    if (spec.getState() != JobState.JOB_STATE_SUBMITTED && spec.getState() != JobState.JOB_STATE_RUNNING
        && spec.getState() != JobState.JOB_STATE_UNSPECIFIED) {
      return;
    }
    if (run != null && (run.isOpen() || run.spec.getCreatedAtMs() == spec.getCreatedAtMs())) {
      return;
    }
    Optional<WriterZk.TerminalState> terminal = zk.terminalState(id);
    if (terminal.isPresent()) {
      WriterZk.TerminalState t = terminal.get();
      // A FAILED job republished (a re-run coordinator, a new created_at) resumes from its checkpoint.
      if (!(t.state() == JobState.JOB_STATE_FAILED && t.createdAtMs() != spec.getCreatedAtMs())) {
        return;
      }
      LOG.info("[job={}] republished after it failed: resuming from its checkpoint", id);
    }
    pendingOpen.put(id, spec);
    retryPendingOpens();
  }

  private void retryPendingOpens() {
    for (JobSpec spec : List.copyOf(pendingOpen.values())) {
      checkLeader();
      try {
        open(spec);
        pendingOpen.remove(spec.getJobId());
      } catch (TargetLockedException e) {
        long now = clock.millis();
        if (now - lastLockWaitLogMs >= 10_000) {
          lastLockWaitLogMs = now;
          LOG.info("[job={}] waiting for the previous writer to release the target: {}", spec.getJobId(), e.getMessage());
        }
      }
    }
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
      failUnopened(spec, e.getMessage());
      return;
    }
    JobRun run = new JobRun(spec, target, options);
    Path part = ImageWriter.partPath(target);
    Optional<WriterCheckpoint> cp = zk.checkpoint(id);
    try {
      if (cp.isPresent()) {
        if (Files.exists(part)) {
          run.image = ImageWriter.resume(target, options, Checkpoint.fromBytes(cp.get().getImageCheckpoint().toByteArray()))
              .guardWrites(stillLeader);
          LOG.info("{} resumed from the checkpoint of epoch {}", run.tag(-1), cp.get().getLeaderEpoch());
        } else if (Files.exists(target)) {
          // The previous leader finished the image but died before recording it.
          run.state = JobRun.State.DONE;
          runs.put(id, run);
          recordTerminal(run, JobState.JOB_STATE_DONE, "");
          event(run, EventKind.EVENT_KIND_STATE, JobState.JOB_STATE_DONE, -1, "", run.progress(0), null);
          return;
        } else {
          failUnopened(spec, "the checkpoint names " + part + " but it is gone");
          return;
        }
      } else {
        if (Files.exists(part)) {
          // Created after the last commit by a writer that died: nothing of it was committed.
          removeFenced(part, run.tag(-1));
        }
        if (Files.exists(target)) {
          failUnopened(spec, "target " + spec.getTargetPath() + " already exists");
          return;
        }
        run.image = ImageWriter.create(target, options).guardWrites(stillLeader);
        LOG.info("{} created {} ({} ranges)", run.tag(-1), part.getFileName(), run.ranges);
      }
    } catch (BadInputException | CorruptException | TargetFullException e) {
      failUnopened(spec, e.getMessage());
      return;
    }
    run.complete = run.image.completeRanges();
    runs.put(id, run);
    event(run, EventKind.EVENT_KIND_STATE, JobState.JOB_STATE_RUNNING, -1, "", run.progress(0), null);
  }

  /** Removes a .part file (and its state files) no checkpoint covers, once no other writer holds it. */
  private static void removeFenced(Path part, String tag) {
    DirectFile.checkNotFencedHere(part);
    try (FileChannel ch = FileChannel.open(part, StandardOpenOption.WRITE)) {
      FileLock lock = ch.tryLock(DirectFile.FENCE_OFFSET, 1, false);
      if (lock == null) {
        throw new TargetLockedException(part + " is locked by another writer");
      }
      Files.deleteIfExists(part);
      deleteStateFiles(part);
      LOG.info("{} removed {}: no committed checkpoint covers it", tag, part.getFileName());
    } catch (IOException e) {
      throw new RetriableException("cannot remove " + part + ": " + e.getMessage(), e);
    }
  }

  private static void deleteStateFiles(Path part) {
    try (DirectoryStream<Path> dir = Files.newDirectoryStream(part.getParent(), part.getFileName() + ".state-*")) {
      for (Path p : dir) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      LOG.warn("cannot remove state files of {}: {}", part, e.toString());
    }
  }

  /** The job is known (re-reading the jobs topic first if it is not). */
  private JobRun knownRun(String jobId) {
    if (!specs.containsKey(jobId)) {
      readJobsToEnd();
    }
    return runs.get(jobId);
  }

  // ---- chunks -------------------------------------------------------------------------------

  /** Handles one chunk record; returns the open job it touched, if any. */
  private JobRun handleChunk(ConsumerRecord<String, byte[]> r) {
    RecordRef ref = RecordRef.newBuilder().setTopic(r.topic()).setPartition(r.partition()).setOffset(r.offset()).build();
    metrics.bytesIn(r.value() == null ? 0 : r.value().length);
    if (!authentic(r)) {
      // Refused before anything of it is believed: no job is looked up, no range re-queued (a
      // forger must not be able to make the workers redo ranges or exhaust a job's attempts).
      return null;
    }
    Wire.Decoded<ChunkRecord> d = Wire.chunkRecord(r.value());
    if (d instanceof Wire.Decoded.Bad<ChunkRecord> bad) {
      String[] key = r.key() == null ? new String[0] : r.key().split("/", 2);
      String job = key.length > 0 ? key[0] : "";
      long range = -1;
      if (key.length == 2) {
        try {
          range = Long.parseLong(key[1]);
        } catch (NumberFormatException ignored) {
          // a key that is not job/range: reported without a range
        }
      }
      JobRun run = job.isEmpty() ? null : knownRun(job);
      reject(run, job, range, bad.reason(), ref);
      if (run != null && run.isOpen() && range >= 0 && range < run.ranges) {
        requeueForBadData(run, range);
      }
      return run != null && run.isOpen() ? run : null;
    }
    ChunkRecord record = ((Wire.Decoded.Ok<ChunkRecord>) d).value();
    String job = record.hasBatch() ? record.getBatch().getJobId() : record.getDone().getJobId();
    long range = record.hasBatch() ? record.getBatch().getRangeIndex() : record.getDone().getRangeIndex();
    JobRun run = knownRun(job);
    if (run == null && pendingOpen.containsKey(job)) {
      // Its image is locked by another writer: its records cannot be skipped, so end the term and
      // recover from the checkpoint (recovery opens every job before it reads a chunk).
      throw new RetriableException("[job=" + job + "] record at " + r.partition() + "@" + r.offset()
          + " for a job whose target is still locked by another writer", null);
    }
    if (run == null) {
      JobSpec spec = specs.get(job);
      if (spec == null) {
        reject(null, job, range, "unknown job " + job, ref);
      } else if (!spec.getWriterGroup().equals(config.group())) {
        reject(null, job, range, "job " + job + " belongs to writer group '" + spec.getWriterGroup() + "'", ref);
      } else {
        LOG.debug("[job={} range={}] record at {}@{} for a job that is not running: skipped", job, range,
            r.partition(), r.offset());
      }
      return null;
    }
    if (!run.isOpen()) {
      LOG.debug("{} late record at {}@{} after the job ended: skipped", run.tag(range), r.partition(), r.offset());
      return null;
    }
    if (record.hasDone()) {
      if (range < run.ranges && !run.complete.get((int) range)) {
        LOG.debug("{} RangeDone of attempt {} before every cluster arrived", run.tag(range), record.getDone().getAttemptId());
      }
      return run;
    }
    ChunkBatch batch = record.getBatch();
    String problem = run.validate(batch);
    if (problem != null) {
      reject(run, job, range, problem, ref);
      if (range < run.ranges) {
        requeueForBadData(run, range);
      }
      return run;
    }
    boolean progressed = false;
    for (int i = 0; i < batch.getEntriesCount(); i++) {
      ChunkEntry e = batch.getEntries(i);
      checkLeader();
      try {
        if (e.getKind() == io.zcow.proto.EntryKind.ENTRY_KIND_ZERO) {
          long added = run.image.putZeros(e.getCluster(), e.getCount());
          progressed |= added > 0;
          metrics.duplicates(e.getCount() - added);
        } else {
          ClusterKind kind = e.getKind() == io.zcow.proto.EntryKind.ENTRY_KIND_RAW ? ClusterKind.RAW : ClusterKind.COMPRESSED;
          PutResult result = run.image.put(e.getCluster(), kind, e.getPayload().asReadOnlyByteBuffer());
          if (result == PutResult.ACCEPTED) {
            progressed = true;
            metrics.write();
          } else {
            metrics.duplicates(1);
          }
        }
      } catch (CorruptException ex) {
        // Only a payload that does not decode (--verify-payloads) gets here; the entries before it are good.
        reject(run, job, range, "entry " + i + ": " + ex.getMessage(), ref);
        requeueForBadData(run, range);
        break;
      } catch (TargetFullException ex) {
        failTargetFull(run, ex);
        return run;
      }
    }
    if (progressed) {
      run.watch(range, clock.millis()).lastProgressMs = clock.millis();
    }
    return run;
  }

  /**
   * Whether the record carries a valid MAC (always, without a key). One that does not is counted
   * and reported — at most once per {@link #UNAUTHENTICATED_REPORT_MILLIS}, with the number held
   * back — under the job its key claims, which nothing vouches for.
   */
  private boolean authentic(ConsumerRecord<String, byte[]> r) {
    RecordAuth.Verdict v = auth.verify(r);
    if (v.ok()) {
      return true;
    }
    metrics.unauthenticated(v.status() == RecordAuth.Status.MISSING);
    String key = r.key() == null ? "" : r.key();
    int slash = key.indexOf('/');
    String job = slash < 0 ? key : key.substring(0, slash);
    if (job.length() > 100) {
      job = job.substring(0, 100); // a forger's key: it does not get to size our events
    }
    long range = -1;
    if (slash >= 0) {
      try {
        range = Long.parseLong(key.substring(slash + 1));
      } catch (NumberFormatException ignored) {
        // reported without a range
      }
    }
    long held = unauthenticatedReports.tryReport(clock.millis());
    if (held < 0) {
      LOG.debug("[job={} range={}] refused record {}-{}@{}: {}", job, range, r.topic(), r.partition(), r.offset(),
          v.reason());
      return false;
    }
    String reason = "record " + r.topic() + "-" + r.partition() + "@" + r.offset() + " refused: " + v.reason()
        + (held > 0 ? " (and " + held + " more unauthenticated records since the last report)" : "");
    LOG.warn("[job={} range={}] {}", job, range, reason);
    RecordRef ref = RecordRef.newBuilder().setTopic(r.topic()).setPartition(r.partition()).setOffset(r.offset()).build();
    send(config.eventsTopic(), job, eventBuilder(job, EventKind.EVENT_KIND_RECORD_REJECTED,
        JobState.JOB_STATE_UNSPECIFIED, range, reason).setRecord(ref).build().toByteArray());
    return false;
  }

  private void reject(JobRun run, String job, long range, String reason, RecordRef ref) {
    LOG.warn("[job={} range={}] rejected record {}-{}@{}: {}", job, range, ref.getTopic(), ref.getPartition(),
        ref.getOffset(), reason);
    metrics.reject();
    if (run != null) {
      run.rejected++;
    }
    JobEvent.Builder e = eventBuilder(job, EventKind.EVENT_KIND_RECORD_REJECTED, JobState.JOB_STATE_UNSPECIFIED, range,
        reason).setRecord(ref);
    send(config.eventsTopic(), job, e.build().toByteArray());
  }

  private void noteCompletedRanges(JobRun run, long now) {
    BitSet now_ = run.image.completeRanges();
    BitSet fresh = (BitSet) now_.clone();
    fresh.andNot(run.complete);
    run.complete = now_;
    for (int r = fresh.nextSetBit(0); r >= 0; r = fresh.nextSetBit(r + 1)) {
      run.watches.remove((long) r);
      LOG.debug("{} complete", run.tag(r));
      event(run, EventKind.EVENT_KIND_RANGE_DONE, JobState.JOB_STATE_RUNNING, r, "", null, null);
    }
  }

  // ---- tasks and re-queues ------------------------------------------------------------------

  private void pollTasks() {
    long now = clock.millis();
    for (ConsumerRecord<String, byte[]> r : tasksConsumer.poll(Duration.ZERO)) {
      if (!auth.verify(r).ok()) {
        continue; // a forged task must not restart a range's clock; the workers report it
      }
      Wire.Decoded<RangeTask> d = Wire.rangeTask(r.value());
      if (!(d instanceof Wire.Decoded.Ok<RangeTask> ok)) {
        continue; // the workers report bad tasks
      }
      RangeTask t = ok.value();
      JobRun run = runs.get(t.getJobId());
      if (run == null || !run.isOpen() || t.getRangeIndex() >= run.ranges || run.complete.get((int) t.getRangeIndex())) {
        continue;
      }
      JobRun.RangeWatch w = run.watch(t.getRangeIndex(), now);
      if (t.getAttempt() >= w.attempt) {
        w.attempt = t.getAttempt();
        w.lastProgressMs = now; // a (re)submission starts the clock again
      }
    }
  }

  private void checkStalledRanges(long now) {
    long timeout = config.rangeTimeout().toMillis();
    for (JobRun run : openRuns()) {
      for (Map.Entry<Long, JobRun.RangeWatch> e : List.copyOf(run.watches.entrySet())) {
        if (!run.isOpen()) {
          break;
        }
        if (now - e.getValue().lastProgressMs >= timeout && !run.complete.get(e.getKey().intValue())) {
          requeue(run, e.getKey(), "no progress for " + config.rangeTimeout().toMillis() + " ms");
        }
      }
    }
  }

  private void requeueForBadData(JobRun run, long range) {
    if (run.complete.get((int) range)) {
      return;
    }
    long now = clock.millis();
    JobRun.RangeWatch w = run.watch(range, now);
    if (w.lastBadRequeueMs != Long.MIN_VALUE && now - w.lastBadRequeueMs < config.rangeTimeout().toMillis()) {
      return; // already asked for it again; the new attempt needs time
    }
    w.lastBadRequeueMs = now;
    requeue(run, range, "bad data received");
  }

  private void requeue(JobRun run, long range, String why) {
    long now = clock.millis();
    JobRun.RangeWatch w = run.watch(range, now);
    if (w.attempt >= config.maxRequeues()) {
      fail(run, "range " + range + " re-queued " + w.attempt + " times: no worker completed it (last: " + why + ")");
      return;
    }
    w.attempt++;
    w.lastProgressMs = now;
    run.requeued++;
    metrics.requeue();
    RangeTask task = RangeTask.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(run.id)
        .setRangeIndex(range).setOffset(run.rangeOffset(range)).setLength(run.rangeLength(range))
        .setAttempt(w.attempt).build();
    send(config.tasksTopic(), Wire.rangeKey(run.id, range), task.toByteArray());
    LOG.warn("{} re-queued as attempt {}: {}", run.tag(range), w.attempt, why);
    event(run, EventKind.EVENT_KIND_RANGE_REQUEUED, JobState.JOB_STATE_RUNNING, range,
        "attempt " + w.attempt + ": " + why, null, null);
  }

  // ---- checkpoints and job ends ---------------------------------------------------------------

  /**
   * Makes every open image durable, commits their checkpoints and the chunks offsets in one
   * conditional ZooKeeper transaction, then lets the images drop old state and trims the topic.
   */
  void checkpointAll() {
    checkLeader();
    long t0 = System.nanoTime();
    WriterCheckpoint.Builder offsets = WriterCheckpoint.newBuilder().setFormatVersion(Wire.FORMAT_VERSION)
        .setLeaderEpoch(zk.epoch()).setTimeMs(clock.millis());
    Map<TopicPartition, Long> positions = new HashMap<>();
    for (TopicPartition tp : chunkPartitions) {
      long pos = chunksConsumer.position(tp, KAFKA_CALL);
      positions.put(tp, pos);
      offsets.addOffsets(PartitionOffset.newBuilder().setPartition(tp.partition()).setOffset(pos));
    }
    List<WriterZk.JobCommit> commits = new ArrayList<>();
    Map<JobRun, Checkpoint> taken = new HashMap<>();
    Map<JobRun, TargetFullException> full = new java.util.LinkedHashMap<>();
    for (JobRun run : openRuns()) {
      Checkpoint cp;
      try {
        cp = run.image.checkpoint();
      } catch (TargetFullException e) {
        full.put(run, e); // that job fails at its last committed checkpoint; the others commit
        continue;
      }
      taken.put(run, cp);
      WriterCheckpoint wc = offsets.clone().setJobId(run.id)
          .setImageCheckpoint(com.google.protobuf.ByteString.copyFrom(cp.toBytes())).build();
      commits.add(new WriterZk.JobCommit(run.id, wc, run.image.completeRanges()));
    }
    checkLeader();
    zk.commit(commits, offsets.build());
    taken.forEach((run, cp) -> run.image.checkpointCommitted(cp));
    full.forEach(this::failTargetFull);
    lastCheckpointMs = clock.millis();
    metrics.checkpoint(System.nanoTime() - t0);
    LOG.debug("[group={}] checkpoint of {} jobs committed at {}", config.group(), taken.size(), positions);
    trim(positions);
  }

  /** Deletes chunk records below the committed offsets; a failure only delays reclaiming space. */
  private void trim(Map<TopicPartition, Long> positions) {
    Map<TopicPartition, RecordsToDelete> del = new HashMap<>();
    positions.forEach((tp, o) -> {
      if (o > 0) {
        del.put(tp, RecordsToDelete.beforeOffset(o));
      }
    });
    if (del.isEmpty()) {
      return;
    }
    try {
      admin.deleteRecords(del).all().get(KAFKA_CALL.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RetriableException("interrupted while trimming " + config.chunksTopic(), e);
    } catch (ExecutionException | TimeoutException e) {
      LOG.warn("[group={}] cannot trim {}: {}", config.group(), config.chunksTopic(), e.toString());
    }
  }

  private void complete(JobRun run) {
    checkpointAll(); // the end of the job is a checkpoint too: a crash during finish resumes here
    if (!run.isOpen()) {
      return; // its checkpoint found the target full
    }
    ImageStats stats = run.image.stats();
    checkLeader();
    try {
      run.image.finish();
    } catch (TargetFullException e) {
      failTargetFull(run, e);
      return;
    }
    run.state = JobRun.State.DONE;
    long size;
    try {
      size = Files.size(run.target);
    } catch (IOException e) {
      size = stats.hostBytes();
    }
    recordTerminal(run, JobState.JOB_STATE_DONE, "");
    Progress p = Progress.newBuilder().setRangesTotal(run.ranges).setRangesDone(run.ranges)
        .setGuestBytesDone(stats.guestClustersDone() * run.geometry.clusterSize()).setHostBytes(size)
        .setPayloadBytes(stats.payloadBytes()).setDuplicates(stats.duplicates()).setRejected(run.rejected)
        .setRequeued(run.requeued).build();
    LOG.info("{} done: {} bytes, {} duplicates, {} rejected, {} re-queued", run.tag(-1), size, stats.duplicates(),
        run.rejected, run.requeued);
    event(run, EventKind.EVENT_KIND_STATE, JobState.JOB_STATE_DONE, -1, "", p, null);
    producer.flush();
  }

  /** The job fails: its image is checkpointed and kept (resumable), nothing at the target path. */
  private void fail(JobRun run, String reason) {
    LOG.error("{} FAILED: {}", run.tag(-1), reason);
    if (run.image != null && run.isOpen()) {
      checkpointAll();
      if (!run.isOpen()) {
        return; // its checkpoint found the target full, and said so
      }
      run.image.close();
    }
    run.state = JobRun.State.FAILED;
    recordTerminal(run, JobState.JOB_STATE_FAILED, reason);
    event(run, EventKind.EVENT_KIND_STATE, JobState.JOB_STATE_FAILED, -1, reason, run.progress(0), null);
    producer.flush();
  }

  /**
   * The job's target file system is full: its image stops where it is, without a checkpoint (that
   * would need space too); the .part file and the last committed checkpoint stay, so a
   * resubmission after space is freed resumes there. The other jobs of the writer go on.
   */
  private void failTargetFull(JobRun run, TargetFullException e) {
    String reason = e.getMessage() + "; " + ImageWriter.partPath(run.target).getFileName()
        + " and its checkpoint are kept: free space, then submit the job again with the same job id to resume";
    LOG.error("{} FAILED: {}", run.tag(-1), reason);
    try {
      run.image.close();
    } catch (RuntimeException closeFailure) {
      LOG.warn("{} closing the image: {}", run.tag(-1), closeFailure.toString());
    }
    run.state = JobRun.State.FAILED;
    recordTerminal(run, JobState.JOB_STATE_FAILED, reason);
    event(run, EventKind.EVENT_KIND_STATE, JobState.JOB_STATE_FAILED, -1, reason, run.progress(0), null);
    producer.flush();
  }

  private void failUnopened(JobSpec spec, String reason) {
    LOG.error("[job={}] FAILED before anything was written: {}", spec.getJobId(), reason);
    JobRun run = new JobRun(spec, null, null);
    runs.put(spec.getJobId(), run);
    run.state = JobRun.State.FAILED;
    zk.setTerminal(spec.getJobId(), JobState.JOB_STATE_FAILED, spec.getCreatedAtMs(), reason);
    send(config.eventsTopic(), spec.getJobId(),
        eventBuilder(spec.getJobId(), EventKind.EVENT_KIND_STATE, JobState.JOB_STATE_FAILED, -1, reason).build().toByteArray());
    producer.flush();
  }

  private void cancel(String id, JobRun run) {
    checkLeader();
    pendingOpen.remove(id);
    if (run != null && run.state == JobRun.State.CANCELLED) {
      return;
    }
    if (run != null && run.state == JobRun.State.DONE) {
      return; // finished before the cancellation arrived: the image stays
    }
    Optional<WriterZk.TerminalState> t = zk.terminalState(id);
    if (run == null && t.isPresent() && t.get().state() != JobState.JOB_STATE_FAILED) {
      return; // ended in an earlier term
    }
    if (run != null && run.image != null && run.isOpen()) {
      run.image.abort();
    } else {
      JobSpec spec = specs.get(id);
      try {
        Path target = confinement.resolve(spec.getTargetPath());
        Path part = ImageWriter.partPath(target);
        if (Files.exists(part)) {
          removeFenced(part, "[job=" + id + "]");
        }
      } catch (BadInputException e) {
        // nothing of it can exist inside the root
      }
    }
    zk.clearCheckpoint(id);
    zk.setTerminal(id, JobState.JOB_STATE_CANCELLED, specs.get(id).getCreatedAtMs(), "cancelled");
    JobRun ended = run != null ? run : new JobRun(specs.get(id), null, null);
    ended.state = JobRun.State.CANCELLED;
    runs.put(id, ended);
    LOG.info("[job={}] cancelled: .part and checkpoint removed", id);
    send(config.eventsTopic(), id,
        eventBuilder(id, EventKind.EVENT_KIND_STATE, JobState.JOB_STATE_CANCELLED, -1, "cancelled").build().toByteArray());
  }

  private void recordTerminal(JobRun run, JobState s, String reason) {
    zk.setTerminal(run.id, s, run.spec.getCreatedAtMs(), reason);
  }

  // ---- helpers ------------------------------------------------------------------------------

  private List<JobRun> openRuns() {
    List<JobRun> open = new ArrayList<>();
    for (JobRun r : runs.values()) {
      if (r.isOpen() && r.image != null) {
        open.add(r);
      }
    }
    return open;
  }

  private void checkLeader() {
    if (!stillLeader.getAsBoolean()) {
      throw new DeposedException("[group=" + config.group() + "] leadership lost (epoch " + zk.epoch() + "): writing stops", null);
    }
  }

  private void event(JobRun run, EventKind kind, JobState state, long range, String reason, Progress p, RecordRef ref) {
    JobEvent.Builder e = eventBuilder(run.id, kind, state, range, reason);
    if (p != null) {
      e.setProgress(p);
    }
    if (ref != null) {
      e.setRecord(ref);
    }
    send(config.eventsTopic(), run.id, e.build().toByteArray());
  }

  private JobEvent.Builder eventBuilder(String job, EventKind kind, JobState state, long range, String reason) {
    return JobEvent.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(job).setKind(kind).setState(state)
        .setReason(reason).setOrigin(origin).setRangeIndex(range).setTimeMs(clock.millis());
  }

  private void send(String topic, String key, byte[] value) {
    producer.send(auth.record(topic, key, value), (md, ex) -> {
      if (ex != null) {
        LOG.warn("[group={}] cannot send to {} (key {}): {}", config.group(), topic, key, ex.toString());
      }
    });
  }

  private List<TopicPartition> assignAll(KafkaConsumer<String, byte[]> consumer, String topic) {
    List<PartitionInfo> infos = consumer.partitionsFor(topic, KAFKA_CALL);
    if (infos == null || infos.isEmpty()) {
      throw new RetriableException("topic " + topic + " does not exist (the coordinator creates it)", null);
    }
    List<TopicPartition> tps = infos.stream().map(i -> new TopicPartition(topic, i.partition())).toList();
    consumer.assign(tps);
    if (consumer != chunksConsumer) {
      consumer.seekToBeginning(tps);
    }
    return tps;
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
    for (JobRun run : runs.values()) {
      if (run.image != null && run.isOpen()) {
        try {
          run.image.close();
        } catch (RuntimeException e) {
          LOG.warn("{} closing the image: {}", run.tag(-1), e.toString());
        }
      }
    }
    closeQuietly(jobsConsumer);
    closeQuietly(tasksConsumer);
    closeQuietly(chunksConsumer);
    try {
      producer.close(Duration.ofSeconds(10));
    } catch (RuntimeException e) {
      LOG.warn("[group={}] closing the producer: {}", config.group(), e.toString());
    }
    admin.close(Duration.ofSeconds(5));
  }

  private static void closeQuietly(KafkaConsumer<?, ?> c) {
    try {
      c.close(Duration.ofSeconds(5));
    } catch (RuntimeException e) {
      LOG.warn("closing a consumer: {}", e.toString());
    }
  }
}
