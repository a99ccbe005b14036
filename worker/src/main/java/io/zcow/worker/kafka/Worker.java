package io.zcow.worker.kafka;

import io.micrometer.core.instrument.MeterRegistry;
import io.zcow.RetriableException;
import io.zcow.qcow2.ZstdClusterCompressor;
import io.zcow.source.ReadRateLimiter;
import java.io.Closeable;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.consumer.ShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.KafkaException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A zcow worker: {@link WorkerConfig#threads()} task loops sharing one producer, one view of the
 * jobs topic and one read-rate limit.
 *
 * <p>Lifecycle LATENT → STARTED ({@link #start()}, once) → CLOSED ({@link #close()}, idempotent).
 * {@code close()} lets running ranges finish within the stop grace and releases the others, so
 * a stopped worker never leaves a task locked. Thread safe.
 */
public final class Worker implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(Worker.class);

  /** Where a worker is in its life. */
  public enum State { LATENT, STARTED, CLOSED }

  private final WorkerConfig config;
  private final WorkerMetrics metrics;
  private final Clock clock;
  private final AtomicReference<State> state = new AtomicReference<>(State.LATENT);
  private final List<TaskLoop> loops = new ArrayList<>();
  private final List<Thread> threads = new ArrayList<>();
  private Producer<String, byte[]> producer;
  private JobDirectory jobs;
  private volatile UnaryOperator<ShareConsumer<String, byte[]>> consumerWrapper = UnaryOperator.identity();

  public Worker(WorkerConfig config, MeterRegistry registry, Clock clock) {
    this.config = Objects.requireNonNull(config, "config");
    this.metrics = new WorkerMetrics(Objects.requireNonNull(registry, "registry"));
    this.clock = Objects.requireNonNull(clock, "clock");
  }

  public State state() {
    return state.get();
  }

  public WorkerMetrics metrics() {
    return metrics;
  }

  public WorkerConfig config() {
    return config;
  }

  /** For fault tests: every share consumer the loops make goes through {@code wrapper}. Before start. */
  void wrapConsumers(UnaryOperator<ShareConsumer<String, byte[]>> wrapper) {
    this.consumerWrapper = Objects.requireNonNull(wrapper, "wrapper");
  }

  /**
   * Checks that the cluster answers, then starts the task loops. They read the jobs topic to its
   * end before taking a task.
   *
   * @throws IllegalStateException when started before, or closed
   * @throws RetriableException when the cluster does not answer within {@link
   *     WorkerConfig#connectTimeout()} (the worker is then closed)
   */
  public synchronized void start() {
    if (!state.compareAndSet(State.LATENT, State.STARTED)) {
      throw new IllegalStateException("a worker starts once; this one is " + state.get());
    }
    try {
      ZstdClusterCompressor.requireNative();
      checkReachable();
      String id = config.origin();
      producer = new KafkaProducer<>(config.kafka().producer(id + "/producer"));
      jobs = JobDirectory.start(config.kafka(), id + "/jobs", config.topics().jobs(), config.topics().events());
      EventSender events = new EventSender(producer, config.kafka().auth(), config.topics().events(),
          config.origin(), clock);
      ReadRateLimiter limiter = config.maxReadBytesPerSecond() > 0
          ? new ReadRateLimiter(config.maxReadBytesPerSecond()) : null;
      AtomicLong quietUntil = new AtomicLong();
      for (int i = 0; i < config.threads(); i++) {
        String clientId = id + "/" + i;
        // A loop makes a new consumer whenever its last one no longer works (ConsumerHealth).
        Supplier<ShareConsumer<String, byte[]>> consumers = () -> consumerWrapper.apply(new KafkaShareConsumer<>(
            config.kafka().shareConsumer(config.topics().workerGroup(), clientId)));
        RangeRunner runner = new RangeRunner("zcow-range-" + i, producer, config.kafka().auth(), config.sourceCache(), config.nbd(),
            limiter, config.origin(), config.sendTimeout());
        TaskLoop loop = new TaskLoop(i, consumers, runner, jobs, events, metrics, config, clock, quietUntil);
        Thread t = new Thread(loop, "zcow-task-" + i);
        loops.add(loop);
        threads.add(t);
      }
      threads.forEach(Thread::start);
      LOG.info("worker {} started: {} threads on {}, {}, group {} on {}", id, config.threads(),
          config.kafka().bootstrapServers(), config.sources(), config.topics().workerGroup(), config.topics().tasks());
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  private void checkReachable() {
    Duration timeout = config.connectTimeout();
    try (Admin admin = Admin.create(config.kafka().admin(config.origin() + "/admin"))) {
      admin.describeCluster(new DescribeClusterOptions().timeoutMs((int) timeout.toMillis()))
          .clusterId().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (KafkaException e) {
      // An unresolvable bootstrap host already fails the admin client's construction.
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      throw new RetriableException("cannot reach Kafka at " + config.kafka().bootstrapServers() + ": "
          + cause.getMessage(), e);
    } catch (ExecutionException | TimeoutException e) {
      Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
      String why = cause.getMessage() == null || cause instanceof TimeoutException ? "no answer" : cause.getMessage();
      throw new RetriableException("cannot reach Kafka at " + config.kafka().bootstrapServers() + " within "
          + timeout.toSeconds() + " s: " + why, cause);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RetriableException("interrupted while reaching Kafka at " + config.kafka().bootstrapServers(), e);
    }
  }

  /**
   * Stops taking tasks; running ranges get {@link WorkerConfig#stopGrace()} to finish, then are
   * released. Returns when every loop has ended (or a little after the grace, if one hangs).
   */
  @Override
  public void close() {
    State was = state.getAndSet(State.CLOSED);
    if (was == State.CLOSED) {
      return;
    }
    loops.forEach(TaskLoop::stop);
    joinThreads(config.stopGrace().plusSeconds(15));
    closeShared();
  }

  /**
   * Ends the worker the way a crash would: nothing is acknowledged or released explicitly, its
   * consumers are closed (the broker then hands their tasks to other workers) and ranges in
   * progress are abandoned. For tests and emergencies.
   */
  public void abandon() {
    State was = state.getAndSet(State.CLOSED);
    if (was == State.CLOSED) {
      return;
    }
    loops.forEach(TaskLoop::abandon);
    joinThreads(Duration.ofSeconds(15));
    closeShared();
  }

  private void joinThreads(Duration limit) {
    long deadline = System.nanoTime() + limit.toNanos();
    for (Thread t : threads) {
      try {
        t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
      if (t.isAlive()) {
        LOG.warn("{} did not end in time", t.getName());
      }
    }
  }

  private void closeShared() {
    if (jobs != null) {
      jobs.close();
    }
    if (producer != null) {
      producer.close(Duration.ofSeconds(10));
    }
  }

  /** Waits until every task loop has ended (after {@link #close()}); false on timeout. */
  public boolean awaitTermination(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    for (Thread t : threads) {
      long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
      if (left <= 0) {
        return false;
      }
      t.join(left);
      if (t.isAlive()) {
        return false;
      }
    }
    return true;
  }
}
