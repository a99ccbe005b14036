package io.zcow.writer;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.zcow.RetriableException;
import java.io.Closeable;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import java.util.function.LongSupplier;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A writer of one writer group: waits for leadership (a Curator {@link LeaderLatch} under
 * {@code /zcow/writers/GROUP/leader}), then runs {@link WriterTerm} terms until it is closed.
 *
 * <p>Fencing, in three layers: (1) the loop, and every write of an open image (its cache's
 * threads included), asks whether this writer still leads — no once ZooKeeper said SUSPENDED or
 * LOST (even if it reconnects: every interruption ends the term, and a new term recovers from the
 * committed checkpoint, never from memory), and no after the process was frozen for half the
 * session, before ZooKeeper's news can arrive; (2)
 * each open image holds the OS lock on its {@code .part} file, so a new leader (in any process)
 * waits until the old one's writes in flight have ended and its files are closed; (3) checkpoints
 * and job states are committed in a ZooKeeper transaction that checks the leader's epoch, so a
 * deposed writer can never commit one.
 *
 * <p>Lifecycle LATENT → STARTED → CLOSED, moved once each; {@link #close()} stops without
 * finishing anything (the next leader resumes from the last committed checkpoint). Thread safe.
 */
public final class Writer implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(Writer.class);

  public enum Lifecycle { LATENT, STARTED, CLOSED }

  public enum Role { STANDBY, LEADER }

  private final WriterConfig config;
  private final Clock clock;
  private final WriterMetrics metrics;
  private final AtomicReference<Lifecycle> lifecycle = new AtomicReference<>(Lifecycle.LATENT);
  /** Bumped on every SUSPENDED or LOST: a term is valid only while it is unchanged. */
  private final AtomicInteger interruptions = new AtomicInteger();
  private volatile boolean connected;
  private volatile Role role = Role.STANDBY;
  private volatile long epoch = -1;
  private CuratorFramework client;
  /** Replaced (by the writer thread) when the writer gives up leadership and rejoins the election. */
  private volatile LeaderLatch latch;
  private KafkaReach reach;
  /**
   * How long a writer that gave up leadership (Kafka out of reach) stays out of the election: the
   * standby is elected within this pause, and the writer rejoins behind it.
   */
  static final Duration REJOIN_PAUSE = Duration.ofSeconds(2);
  private Thread thread;
  private Thread ticker;
  private final LongSupplier nanoTime;
  private final Function<WriterConfig, WriterClients> clients;
  /**
   * When the ticker last ran. A process that was frozen (SIGSTOP, a long pause) may have lost its
   * ZooKeeper session while it could not hear about it, and on thawing its threads run before
   * ZooKeeper's news arrives: a gap of half the session timeout ends the term (see {@link #awake}).
   */
  private volatile long lastTickNanos;
  private long freezeLimitNanos;

  /** A writer with a registry of its own (see {@link #metrics()}). */
  public Writer(WriterConfig config, Clock clock) {
    this(config, clock, new PrometheusMeterRegistry(PrometheusConfig.DEFAULT));
  }

  /** A writer whose meters join {@code registry}, the process's one registry that its endpoint serves. */
  public Writer(WriterConfig config, Clock clock, PrometheusMeterRegistry registry) {
    this(config, clock, System::nanoTime, WriterClients::of, registry);
  }

  /**
   * With the monotonic clock the timers and the freeze detection read (tests jump it) and the
   * Kafka clients each term gets.
   */
  Writer(WriterConfig config, Clock clock, LongSupplier nanoTime, Function<WriterConfig, WriterClients> clients) {
    this(config, clock, nanoTime, clients, new PrometheusMeterRegistry(PrometheusConfig.DEFAULT));
  }

  private Writer(WriterConfig config, Clock clock, LongSupplier nanoTime, Function<WriterConfig, WriterClients> clients,
      PrometheusMeterRegistry registry) {
    this.config = config;
    this.clock = clock;
    this.nanoTime = nanoTime;
    this.clients = clients;
    this.metrics = new WriterMetrics(config.group(), config.targetRoot(), registry);
    this.reach = new KafkaReach(config.kafkaLossTimeout(), nanoTime);
  }

  /**
   * Connects to ZooKeeper, joins the election and starts the writer thread.
   *
   * @throws IllegalStateException if called twice
   */
  public Writer start() {
    if (!lifecycle.compareAndSet(Lifecycle.LATENT, Lifecycle.STARTED)) {
      throw new IllegalStateException("Writer.start() called in state " + lifecycle.get());
    }
    freezeLimitNanos = sessionTimeout.toNanos() / 2;
    lastTickNanos = nanoTime.getAsLong();
    ticker = new Thread(this::tick, "zcow-writer-ticker-" + config.group());
    ticker.setDaemon(true);
    ticker.start();
    client = CuratorFrameworkFactory.builder().connectString(config.zookeeper())
        .sessionTimeoutMs((int) sessionTimeout.toMillis())
        .connectionTimeoutMs((int) Math.min(10_000, sessionTimeout.toMillis()))
        .retryPolicy(new ExponentialBackoffRetry(200, 10, 5_000)).build();
    client.getConnectionStateListenable().addListener((c, s) -> onConnectionState(s));
    client.start();
    latch = joinElection();
    thread = new Thread(this::run, "zcow-writer-" + config.group());
    thread.setUncaughtExceptionHandler((t, e) -> died(e));
    thread.start();
    return this;
  }

  private void onConnectionState(ConnectionState s) {
    connected = s.isConnected();
    if (s == ConnectionState.SUSPENDED || s == ConnectionState.LOST) {
      interruptions.incrementAndGet();
      LOG.warn("[group={}] ZooKeeper {}: no more writes until re-elected", config.group(), s);
    }
  }

  /**
   * Notices freezes: a gap longer than half the session timeout between two ticks ends the term
   * (a new term recovers from the checkpoint, if this writer still leads by then). The interruption
   * is counted before the tick is renewed, so a thread that sees the renewed tick sees it too.
   */
  private void tick() {
    while (lifecycle.get() == Lifecycle.STARTED) {
      long now = nanoTime.getAsLong();
      long gap = now - lastTickNanos;
      if (gap > freezeLimitNanos) {
        interruptions.incrementAndGet();
        LOG.warn("[group={}] this process was frozen for {} ms (more than half the ZooKeeper session): "
            + "no more writes until re-elected", config.group(), gap / 1_000_000);
      }
      lastTickNanos = now;
      sleep(50);
    }
  }

  /** False from the moment a freeze could have cost the session until the ticker has counted it. */
  private boolean awake() {
    return nanoTime.getAsLong() - lastTickNanos <= freezeLimitNanos;
  }

  private LeaderLatch joinElection() {
    LeaderLatch l = new LeaderLatch(client, WriterZk.leaderPath(config.groupPath()), "writer-" + ProcessHandle.current().pid());
    try {
      l.start();
    } catch (Exception e) {
      throw new RetriableException("cannot join the writer election of group " + config.group() + ": " + e, e);
    }
    return l;
  }

  /**
   * Kafka has been out of reach longer than the bound: leave the election at once, so the standby
   * is elected while this term is still closing (its clients wait for their close timeouts). Safe
   * before the close: the term stopped writing when it threw, its images give up their fence locks
   * first (the new leader waits for them), and a commit checks the epoch.
   */
  private void leaveElection() {
    try {
      latch.close();
    } catch (Exception e) {
      LOG.warn("[group={}] leaving the election: {}", config.group(), e.toString());
    }
    metrics.gaveUpLeadership();
  }

  /** After {@link #leaveElection()}: stays out for {@link #REJOIN_PAUSE} from {@code left}, then rejoins. */
  private void rejoinAfterPause(long left) {
    while (System.nanoTime() - left < REJOIN_PAUSE.toNanos() && lifecycle.get() == Lifecycle.STARTED) {
      sleep(50);
    }
    if (lifecycle.get() != Lifecycle.STARTED) {
      return;
    }
    latch = joinElection(); // a failure here kills the writer thread: died() reports it, the CLI exits
    LOG.info("[group={}] rejoined the election as a candidate", config.group());
  }

  private void run() {
    boolean holding = false;
    while (lifecycle.get() == Lifecycle.STARTED) {
      if (!connected || !latch.hasLeadership()) {
        holding = false;
        sleep(100);
        continue;
      }
      if (!holding) {
        reach.restart(); // a new leadership gets the whole bound to reach Kafka
        holding = true;
      }
      boolean gaveUp = false;
      long left = 0;
      int generation = interruptions.get();
      WriterZk zk = new WriterZk(client, config.groupPath());
      WriterTerm loop = null;
      try {
        long next;
        try {
          next = zk.bumpEpoch(latch.getOurPath());
        } catch (DeposedException e) { // the latch's flag was stale (a thaw, a lost session): not elected
          LOG.warn("[group={}] {}", config.group(), e.getMessage());
          holding = false;
          sleep(500);
          continue;
        }
        epoch = next;
        role = Role.LEADER;
        metrics.leading(true);
        LOG.info("[group={}] leader with epoch {}", config.group(), epoch);
        loop = new WriterTerm(config, zk, clients.apply(config), clock, nanoTime,
            () -> awake() && lifecycle.get() == Lifecycle.STARTED && connected && generation == interruptions.get()
                && latch.hasLeadership(), metrics, reach);
        loop.start();
        loop.runUntilDeposed();
      } catch (KafkaUnreachableException e) {
        LOG.warn("[group={}] term of epoch {} ended: {}; leaving the election for {} ms so a standby takes over",
            config.group(), epoch, e.getMessage(), REJOIN_PAUSE.toMillis());
        leaveElection();
        gaveUp = true;
        left = System.nanoTime();
      } catch (DeposedException e) {
        if (lifecycle.get() == Lifecycle.CLOSED) {
          LOG.info("[group={}] stopped in epoch {}", config.group(), epoch);
          continue;
        }
        LOG.warn("[group={}] term of epoch {} ended: {}", config.group(), epoch, e.getMessage());
      } catch (RuntimeException e) {
        if (reach.lost()) {
          // A term that could not even recover (the brokers do not answer its reads) counts too.
          LOG.warn("[group={}] term of epoch {} failed ({}) and Kafka has not answered for {} ms (bound {} ms): "
              + "leaving the election for {} ms so a standby takes over", config.group(), epoch, e.toString(),
              reach.silence().toMillis(), reach.bound().toMillis(), REJOIN_PAUSE.toMillis());
          leaveElection();
          gaveUp = true;
          left = System.nanoTime();
        } else {
          LOG.error("[group={}] term of epoch {} failed; recovering from the last checkpoint", config.group(), epoch, e);
          sleep(1000);
        }
      } finally {
        role = Role.STANDBY;
        metrics.leading(false); // a writer that does not lead has no jobs and nothing pending
        if (loop != null) {
          loop.close();
        }
      }
      if (gaveUp) {
        holding = false;
        rejoinAfterPause(left);
      }
    }
  }

  /**
   * The writer thread died of something no term can recover from (an Error such as running out of
   * memory). Holding on to leadership would stall the group: let a standby take over.
   */
  private void died(Throwable e) {
    fatal = e;
    role = Role.STANDBY;
    LOG.error("[group={}] the writer thread died; leaving the election so a standby takes over", config.group(), e);
    try {
      latch.close();
    } catch (Exception closeFailure) {
      LOG.warn("[group={}] leaving the election: {}", config.group(), closeFailure.toString());
    }
    Runnable hook = onDeath;
    if (hook != null) {
      hook.run();
    }
  }

  private volatile Throwable fatal;
  private volatile Runnable onDeath;
  private volatile Duration sessionTimeout = DEFAULT_SESSION_TIMEOUT;

  /** The ZooKeeper session timeout unless {@link #sessionTimeout(Duration)} says otherwise. */
  public static final Duration DEFAULT_SESSION_TIMEOUT = Duration.ofSeconds(15);

  /**
   * The ZooKeeper session timeout (before {@link #start()}): how long a leader that stops
   * answering (a dead or stopped process, a partition) keeps its leadership before a standby is
   * elected. Shorter means a faster takeover and more spurious ones on a loaded host; the server
   * clamps it to between 2 and 20 of its ticks.
   *
   * @throws IllegalArgumentException unless positive
   */
  public Writer sessionTimeout(Duration timeout) {
    if (timeout == null || timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("sessionTimeout must be positive: " + timeout);
    }
    this.sessionTimeout = timeout;
    return this;
  }

  /** Called (once, on the dying thread) if the writer thread dies; the CLI exits the process. */
  public Writer onDeath(Runnable hook) {
    this.onDeath = hook;
    return this;
  }

  /** Why the writer thread died, or null while it lives (or after a clean close). */
  public Throwable fatal() {
    return fatal;
  }

  public Role role() {
    return role;
  }

  public long epoch() {
    return epoch;
  }

  public Lifecycle lifecycle() {
    return lifecycle.get();
  }

  /** The ZooKeeper client (tests expire its session). */
  CuratorFramework zookeeperClient() {
    return client;
  }

  public WriterMetrics metrics() {
    return metrics;
  }

  /** Blocks until this writer leads, or the timeout passes. */
  public boolean awaitLeadership(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (role != Role.LEADER) {
      if (System.nanoTime() > deadline) {
        return false;
      }
      TimeUnit.MILLISECONDS.sleep(20);
    }
    return true;
  }

  /**
   * Stops: the current term stops writing at its next check, closes its images (writes in flight
   * end, the fence locks go) and the writer leaves the election. Nothing is finished or removed.
   */
  @Override
  public void close() {
    if (lifecycle.getAndSet(Lifecycle.CLOSED) != Lifecycle.STARTED) {
      return;
    }
    if (thread != null) {
      try {
        thread.join(60_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    try {
      latch.close();
    } catch (Exception e) {
      LOG.warn("[group={}] leaving the election: {}", config.group(), e.toString());
    }
    client.close();
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
