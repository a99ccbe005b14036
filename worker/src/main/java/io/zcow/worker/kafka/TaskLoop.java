package io.zcow.worker.kafka;

import io.zcow.RetriableException;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobSpecs;
import io.zcow.worker.kafka.RangeRunner.Outcome;
import io.zcow.worker.kafka.RangeRunner.Work;
import io.zcow.worker.kafka.TaskTriage.Decision;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ShareConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One worker thread's loop: takes one RangeTask at a time from the share group, decides what it
 * is, has its range compressed by a {@link RangeRunner}, and acknowledges it: ACCEPT once every
 * record of the range is acknowledged by the broker (or when its job is cancelled), RELEASE when
 * this worker cannot or may not read the source (another may), REJECT when no worker can do it.
 *
 * <p>While a range runs, the loop renews the task's acquisition lock ({@link AcknowledgeType#RENEW})
 * every {@link WorkerConfig#renewInterval()}, so a slow range is not handed to a second worker
 * for want of time. A renewed record comes back from {@code poll}: the loop matches it to the
 * running task by partition and offset and never starts it again. A normal range ends well inside
 * its first lock and needs no RENEW; a RENEW that fails, is refused or does not complete within
 * {@link TaskConsumer#COMMIT_TIMEOUT} counts the lock as lost: the range runs to its end and is
 * not acknowledged (the writer keeps the first copy of every cluster).
 *
 * <p>The loop keeps its share consumer only while {@link ConsumerHealth} finds it healthy: an
 * unhealthy one is closed and a new one made from the factory, between ranges only — closing
 * releases the records the consumer holds and spends their delivery counts.
 *
 * <p>The body of the loop is {@link #runOnce()}; every field but the stop flag is owned by the
 * loop's thread (the share consumer is not thread safe). {@link #stop()} may be called from any
 * thread: the running range then gets {@link WorkerConfig#stopGrace()} to finish, and is released
 * if it does not.
 */
public final class TaskLoop implements Runnable {
  private static final Logger LOG = LoggerFactory.getLogger(TaskLoop.class);
  private static final long DEFAULT_RENEW_MILLIS = 15_000;
  private static final long WAIT_SLICE_MILLIS = 200;

  private final int index;
  private final TaskConsumer tasks;
  private final TaskTriage triage;
  private final RangeExecutor runner;
  private final JobView jobs;
  private final EventSender events;
  private final WorkerMetrics metrics;
  private final WorkerMetrics.ThreadMeters threadMeters;
  private final WorkerConfig config;
  private final Clock clock;
  private final AtomicLong quietUntil; // shared by the worker's loops: no new task before this (clock millis)
  private volatile boolean stopping;
  private volatile boolean abandoning;
  // Owned by the loop thread:
  private InFlight current;
  private final ArrayDeque<ConsumerRecord<String, byte[]>> queued = new ArrayDeque<>();
  private long stopDeadline = -1;
  private boolean jobsRead;

  /** A task whose range is running. */
  private static final class InFlight {
    ConsumerRecord<String, byte[]> record;
    final Work work;
    final CompletableFuture<Outcome> result;
    long renewAt;
    boolean lockLost;

    InFlight(ConsumerRecord<String, byte[]> record, Work work, CompletableFuture<Outcome> result, long renewAt) {
      this.record = record;
      this.work = work;
      this.result = result;
      this.renewAt = renewAt;
    }

    String tag() {
      return "[job=" + work.jobId() + " range=" + work.range() + "]";
    }
  }

  /**
   * @param consumers makes the loop's share consumer, and a new one whenever the last is unhealthy
   * @param clock the loop's one time source: renewals, stop grace, back-off and consumer health
   */
  TaskLoop(int index, Supplier<ShareConsumer<String, byte[]>> consumers, RangeExecutor runner, JobView jobs,
      EventSender events, WorkerMetrics metrics, WorkerConfig config, Clock clock, AtomicLong quietUntil) {
    this.index = index;
    ConsumerHealth health = new ConsumerHealth(clock::millis, config.idleBound().toMillis(), jobs::workWaiting);
    this.tasks = new TaskConsumer(consumers, config.topics().tasks(), health, metrics,
        config.origin() + " thread " + index);
    this.triage = new TaskTriage(index, jobs, config);
    this.runner = runner;
    this.jobs = jobs;
    this.events = events;
    this.metrics = metrics;
    this.threadMeters = metrics.thread(index);
    this.config = config;
    this.clock = clock;
    this.quietUntil = quietUntil;
  }

  /** Asks the loop to end: the running range may finish within the stop grace, or is released. */
  public void stop() {
    stopping = true;
  }

  /**
   * Asks the loop to end at once without acknowledging anything, as a crashed worker would (its
   * consumer is closed, so the broker hands its tasks to other workers).
   */
  void abandon() {
    abandoning = true;
    stopping = true;
  }

  @Override
  public void run() {
    try {
      while (true) {
        try {
          if (!runOnce()) {
            break;
          }
        } catch (RuntimeException e) {
          LOG.error("worker thread {}: unexpected failure, going on in 1 s", index, e);
          pause(1000);
        }
      }
    } finally {
      shutDown();
    }
  }

  /**
   * One step of the loop: wait for the jobs topic to be read, or take a task and decide on it, or
   * look after the running range (finish, renew, give up on stop).
   *
   * @return false once the loop has stopped and holds no task
   */
  public boolean runOnce() {
    if (abandoning) {
      return false;
    }
    if (!jobsRead) {
      if (stopping) {
        return false;
      }
      try {
        jobs.awaitCaughtUp(config.jobsTimeout());
        jobsRead = true;
      } catch (RetriableException e) {
        LOG.warn("worker thread {}: {}; trying again", index, e.getMessage());
      }
      return true;
    }
    if (!tasks.subscribed()) {
      tasks.subscribe();
      LOG.debug("{} thread {}: jobs read, taking tasks from {}", config.origin(), index, config.topics().tasks());
    }
    if (current != null) {
      tend(current);
      return true;
    }
    if (stopping) {
      return false; // shutDown() releases what is queued
    }
    if (tasks.replaceIfUnhealthy(queued.size()).isPresent()) {
      queued.clear(); // the old consumer's close gave them back
      return true;
    }
    long quiet = quietUntil.get() - clock.millis();
    if (queued.isEmpty() && quiet > 0) {
      pause(Math.min(quiet, WAIT_SLICE_MILLIS)); // let another worker take what we released
      return true;
    }
    if (queued.isEmpty()) {
      queued.addAll(tasks.poll(config.pollTimeout()));
    }
    ConsumerRecord<String, byte[]> next = queued.poll();
    if (next != null) {
      begin(next);
    }
    return true;
  }

  private void begin(ConsumerRecord<String, byte[]> r) {
    Decision d = triage.decide(r);
    if (d instanceof Decision.Start s) {
      Work w = s.work();
      current = new InFlight(r, w, runner.submit(w), clock.millis() + renewMillis());
      LOG.info("[job={} range={}] started on thread {}: clusters {}+{} of {} (attempt {}, delivery {})", w.jobId(),
          w.range(), index, w.firstCluster(), w.clusterCount(), w.source(), w.attemptId(),
          r.deliveryCount().map(String::valueOf).orElse("?"));
    } else if (d instanceof Decision.Skip s) {
      LOG.info("[job={} range={}] skipped: {}", s.jobId(), s.range(), s.reason());
      tasks.acknowledge(r, AcknowledgeType.ACCEPT, "[job=" + s.jobId() + " range=" + s.range() + "]");
      metrics.skipped();
    } else if (d instanceof Decision.Release rel) {
      LOG.info("[job={} range={}] released for another worker: {}", rel.jobId(), rel.range(), rel.reason());
      tasks.acknowledge(r, AcknowledgeType.RELEASE, "[job=" + rel.jobId() + " range=" + rel.range() + "]");
      events.taskReleased(rel.jobId(), rel.range(), config.origin() + " cannot do it: " + rel.reason());
      metrics.released();
      backOff();
    } else if (d instanceof Decision.Unauthenticated u) {
      String where = r.topic() + "-" + r.partition() + "@" + r.offset();
      boolean reported = events.taskUnauthenticated(u.jobId(), u.range(), "task " + where + " refused: " + u.reason()
          + " (" + config.origin() + ")");
      if (reported) {
        LOG.warn("[job={} range={}] task {} rejected: {}", u.jobId(), u.range(), where, u.reason());
      } else {
        LOG.debug("[job={} range={}] task {} rejected: {}", u.jobId(), u.range(), where, u.reason());
      }
      tasks.acknowledge(r, AcknowledgeType.REJECT, "[job=" + u.jobId() + " range=" + u.range() + "]");
      metrics.rejected();
      metrics.unauthenticated();
    } else if (d instanceof Decision.Reject rej) {
      LOG.warn("[job={} range={}] rejected: {}", rej.jobId(), rej.range(), rej.reason());
      tasks.acknowledge(r, AcknowledgeType.REJECT, "[job=" + rej.jobId() + " range=" + rej.range() + "]");
      events.taskRejected(rej.jobId(), rej.range(), rej.reason() + " (" + config.origin() + ", " + r.topic() + "-"
          + r.partition() + "@" + r.offset() + ")");
      metrics.rejected();
    }
  }

  private void backOff() {
    long until = clock.millis() + config.releaseBackoff().toMillis();
    quietUntil.accumulateAndGet(until, Math::max);
  }

  /** Looks after the running range for at most a short while. */
  private void tend(InFlight f) {
    long now = clock.millis();
    if (f.result.isDone()) {
      conclude(f);
      return;
    }
    if (stopping) {
      if (stopDeadline < 0) {
        stopDeadline = now + config.stopGrace().toMillis();
        LOG.info("{} stopping: the range gets {} ms to finish", f.tag(), config.stopGrace().toMillis());
      }
      if (now >= stopDeadline) {
        giveUp(f, "the worker is stopping");
        return;
      }
    }
    Optional<JobSpec> spec = jobs.get(f.work.jobId());
    if (spec.isPresent() && JobSpecs.isTerminal(spec.get().getState())) {
      f.work.cancelled().set(true);
      current = null;
      tasks.rangeEnded();
      LOG.info("{} cancelled mid-range: the job is {}", f.tag(), spec.get().getState());
      if (!f.lockLost) {
        tasks.acknowledge(f.record, AcknowledgeType.ACCEPT, f.tag());
      }
      metrics.skipped();
      return;
    }
    if (now >= f.renewAt && !f.lockLost) {
      renew(f);
      now = clock.millis();
    }
    long until = Math.min(f.lockLost ? Long.MAX_VALUE : f.renewAt, now + WAIT_SLICE_MILLIS);
    if (stopDeadline >= 0) {
      until = Math.min(until, stopDeadline);
    }
    try {
      f.result.get(Math.max(1, until - now), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      // not done yet: the next step looks again
    } catch (ExecutionException e) {
      // conclude() reports it
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      stopping = true;
    }
  }

  private void conclude(InFlight f) {
    current = null;
    tasks.rangeEnded();
    Outcome o;
    try {
      o = f.result.join();
    } catch (RuntimeException e) {
      o = new Outcome.Release("unexpected failure: " + e, false);
    }
    if (o instanceof Outcome.Done d) {
      threadMeters.rangeDone(d.stats(), d.nanos());
      if (f.lockLost) {
        LOG.warn("{} done after its acquisition lock was lost: not acknowledged (another worker may do it again;"
            + " the writer keeps the first copy)", f.tag());
        return;
      }
      boolean ok = tasks.acknowledge(f.record, AcknowledgeType.ACCEPT, f.tag());
      LOG.info("{} done{}: {} zero / {} compressed / {} raw clusters, {} bytes read, {} bytes out, {} MB/s", f.tag(),
          ok ? "" : " (acknowledgement failed: it may be done again)", d.stats().zeroClusters(),
          d.stats().compressedClusters(), d.stats().rawClusters(), d.stats().bytesRead(), d.stats().payloadBytes(),
          String.format("%.1f", d.stats().bytesRead() / Math.max(1e-9, d.nanos() / 1e9) / 1e6));
    } else {
      String reason = o instanceof Outcome.Release r ? r.reason() : "cancelled";
      String why = config.origin() + " could not finish it: " + reason;
      if (o instanceof Outcome.Release r && r.readFailed() && !f.lockLost) {
        // The writer owns a range's attempts: this task is done with, and the writer issues the
        // range again at once, counted. (Released, it would spend its delivery counts here.)
        LOG.warn("{} failed (attempt {}), left to the writer to issue again: {}", f.tag(), f.work.taskAttempt(), reason);
        tasks.acknowledge(f.record, AcknowledgeType.ACCEPT, f.tag());
        events.attemptFailed(f.work.jobId(), f.work.range(), f.work.taskAttempt(), why);
      } else {
        LOG.warn("{} released for another worker: {}", f.tag(), reason);
        if (!f.lockLost) {
          tasks.acknowledge(f.record, AcknowledgeType.RELEASE, f.tag());
        }
        events.taskReleased(f.work.jobId(), f.work.range(), why);
      }
      metrics.released();
      backOff();
    }
  }

  private void giveUp(InFlight f, String why) {
    f.work.cancelled().set(true);
    current = null;
    tasks.rangeEnded();
    LOG.info("{} released unfinished: {}", f.tag(), why);
    if (!f.lockLost) {
      tasks.acknowledge(f.record, AcknowledgeType.RELEASE, f.tag());
    }
    metrics.released();
  }

  /**
   * Renews the locks of every record this loop holds, then takes the renewed records back from
   * {@code poll}: a renewed record is handed out again, and must be acknowledged as the one
   * returned.
   */
  private void renew(InFlight f) {
    List<ConsumerRecord<String, byte[]>> held = new ArrayList<>();
    held.add(f.record);
    held.addAll(queued);
    if (!tasks.acknowledgeAll(held, AcknowledgeType.RENEW, f.tag() + " renewal")) {
      // Failed, refused or not in time: whether the broker renewed the lock is unknown. Counting
      // it lost is the safe side; the consumer is replaced once the range has ended.
      lockLost(f, "its renewal did not succeed");
      return;
    }
    List<ConsumerRecord<String, byte[]>> back = new ArrayList<>(tasks.poll(Duration.ZERO));
    ConsumerRecord<String, byte[]> mine = take(back, f.record);
    if (mine == null) {
      lockLost(f, "the renewed record did not come back");
      tasks.lockLost(f.tag() + ": the renewed record did not come back from poll");
    } else {
      f.record = mine;
      metrics.renewed();
    }
    ArrayDeque<ConsumerRecord<String, byte[]>> still = new ArrayDeque<>();
    for (ConsumerRecord<String, byte[]> q : queued) {
      ConsumerRecord<String, byte[]> again = take(back, q);
      if (again != null) {
        still.add(again);
      }
    }
    queued.clear();
    queued.addAll(still);
    // Records nobody asked for (a fetch that raced the renewal) wait their turn, renewed with the rest.
    queued.addAll(back);
    f.renewAt = clock.millis() + renewMillis();
  }

  private void lockLost(InFlight f, String why) {
    f.lockLost = true;
    LOG.warn("{} acquisition lock lost ({}): the range goes on, unacknowledged (another worker may get it too;"
        + " the writer keeps the first copy)", f.tag(), why);
  }

  private static ConsumerRecord<String, byte[]> take(List<ConsumerRecord<String, byte[]>> records,
      ConsumerRecord<String, byte[]> like) {
    for (int i = 0; i < records.size(); i++) {
      ConsumerRecord<String, byte[]> r = records.get(i);
      if (r.topic().equals(like.topic()) && r.partition() == like.partition() && r.offset() == like.offset()) {
        return records.remove(i);
      }
    }
    return null;
  }

  private long renewMillis() {
    if (config.renewInterval() != null) {
      return config.renewInterval().toMillis();
    }
    Optional<Integer> lock = tasks.acquisitionLockTimeoutMs();
    return lock.map(ms -> Math.max(500L, ms / 2L)).orElse(DEFAULT_RENEW_MILLIS);
  }

  private void shutDown() {
    try {
      if (!abandoning) {
        if (current != null) {
          giveUp(current, "the worker thread ended");
        }
        if (!queued.isEmpty() && tasks.subscribed()) {
          tasks.acknowledgeAll(List.copyOf(queued), AcknowledgeType.RELEASE, "release of queued tasks");
        }
      } else if (current != null) {
        current.work.cancelled().set(true);
      }
      queued.clear();
      current = null;
    } catch (RuntimeException e) {
      LOG.warn("worker thread {}: releasing its tasks failed: {}", index, e.toString());
    } finally {
      tasks.close(); // releases whatever is still acquired
      runner.close(abandoning ? Duration.ZERO : Duration.ofSeconds(5));
    }
  }

  private static void pause(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
