package io.zcow.worker.kafka;

import io.zcow.BadInputException;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.source.SourceCache;
import io.zcow.source.nbd.NbdOptions;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.Objects;

/**
 * How a {@link Worker} runs, typed and checked once when it is built ({@code zcow worker}, the
 * embedded backup, tests): {@code WorkerConfig.builder(kafka).threads(2).build()}. Immutable and
 * thread safe; {@link #toBuilder()} makes a changed copy.
 */
public final class WorkerConfig {
  public static final int MAX_THREADS = 1024;
  public static final Duration DEFAULT_IDLE_BOUND = Duration.ofSeconds(60);

  private final Builder b;

  private WorkerConfig(Builder b) {
    this.b = b;
  }

  /**
   * The defaults of {@code zcow worker}: one thread per core, every source allowed, O_DIRECT where
   * possible, no rate limit, lock renewed at half its duration, 30 s to finish a range on close, 2 s
   * without tasks after a release, a new share consumer after 60 s without a task while work waits
   * (the task lock's length: by then a task another consumer held but did not start is started or
   * back).
   */
  public static Builder builder(KafkaSettings kafka) {
    return new Builder(kafka);
  }

  public Builder toBuilder() {
    return b.copy();
  }

  /** Where the cluster is and the client settings. */
  public KafkaSettings kafka() {
    return b.kafka;
  }

  /** The topics and share group (production: {@link WorkerTopics#defaults()}). */
  public WorkerTopics topics() {
    return b.topics;
  }

  /** Task loops, each taking one task at a time and compressing on a thread of its own. */
  public int threads() {
    return b.threads;
  }

  /** Which sources this worker may read. */
  public SourcePolicy sources() {
    return b.sources;
  }

  /** O_DIRECT or page-cache reads. */
  public SourceCache sourceCache() {
    return b.sourceCache;
  }

  /** Ceiling on the reads of all threads together; 0 for none. */
  public double maxReadBytesPerSecond() {
    return b.maxReadBytesPerSecond;
  }

  /** Names this worker in events and RangeDones ("worker@host"). */
  public String origin() {
    return b.origin;
  }

  /** How long an idle loop waits for a task before looking at its stop flag. */
  public Duration pollTimeout() {
    return b.pollTimeout;
  }

  /**
   * How often a running task's acquisition lock is renewed; null for half the lock duration the
   * broker reports (15 s until it has reported one).
   */
  public Duration renewInterval() {
    return b.renewInterval;
  }

  /** On close, how long a running range may take to finish before it is released. */
  public Duration stopGrace() {
    return b.stopGrace;
  }

  /** How long {@link Worker#start()} tries to reach the cluster. */
  public Duration connectTimeout() {
    return b.connectTimeout;
  }

  /** How long reading the jobs topic to its end may take. */
  public Duration jobsTimeout() {
    return b.jobsTimeout;
  }

  /** How long a finished range waits for the broker to acknowledge its records. */
  public Duration sendTimeout() {
    return b.sendTimeout;
  }

  /**
   * After releasing a task it cannot do, how long the whole worker takes no task, so the task goes
   * to another worker rather than back to this one: every delivery counts against the broker's
   * {@code group.share.delivery.count.limit} (5 by default), after which the task is archived.
   */
  public Duration releaseBackoff() {
    return b.releaseBackoff;
  }

  /** How NBD sources are reached (timeouts, connections, TLS credentials). */
  public NbdOptions nbd() {
    return b.nbd;
  }

  /**
   * How long a task loop may take no task while running jobs show ranges no worker has started,
   * before it replaces its share consumer (see {@link ConsumerHealth}).
   */
  public Duration idleBound() {
    return b.idleBound;
  }

  static String hostName() {
    String env = System.getenv("HOSTNAME");
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      return env != null && !env.isBlank() ? env : "unknown-host";
    }
  }

  /** Builds a {@link WorkerConfig}; {@link #build()} checks every field and names the bad one. */
  public static final class Builder {
    private final KafkaSettings kafka;
    private WorkerTopics topics = WorkerTopics.defaults();
    private int threads = Runtime.getRuntime().availableProcessors();
    private SourcePolicy sources = SourcePolicy.allowAll();
    private SourceCache sourceCache = SourceCache.AUTO;
    private double maxReadBytesPerSecond;
    private String origin;
    private Duration pollTimeout = Duration.ofMillis(500);
    private Duration renewInterval;
    private Duration stopGrace = Duration.ofSeconds(30);
    private Duration connectTimeout = Duration.ofSeconds(30);
    private Duration jobsTimeout = Duration.ofSeconds(30);
    private Duration sendTimeout = Duration.ofMinutes(2);
    private Duration releaseBackoff = Duration.ofSeconds(2);
    private NbdOptions nbd = NbdOptions.defaults();
    private Duration idleBound = DEFAULT_IDLE_BOUND;

    private Builder(KafkaSettings kafka) {
      this.kafka = Objects.requireNonNull(kafka, "kafka");
    }

    private Builder copy() {
      Builder c = new Builder(kafka);
      c.topics = topics;
      c.threads = threads;
      c.sources = sources;
      c.sourceCache = sourceCache;
      c.maxReadBytesPerSecond = maxReadBytesPerSecond;
      c.origin = origin;
      c.pollTimeout = pollTimeout;
      c.renewInterval = renewInterval;
      c.stopGrace = stopGrace;
      c.connectTimeout = connectTimeout;
      c.jobsTimeout = jobsTimeout;
      c.sendTimeout = sendTimeout;
      c.releaseBackoff = releaseBackoff;
      c.nbd = nbd;
      c.idleBound = idleBound;
      return c;
    }

    public Builder topics(WorkerTopics t) {
      this.topics = Objects.requireNonNull(t, "topics");
      return this;
    }

    /** 1 to {@link #MAX_THREADS}; default: the number of cores. */
    public Builder threads(int n) {
      this.threads = n;
      return this;
    }

    public Builder sources(SourcePolicy p) {
      this.sources = Objects.requireNonNull(p, "sources");
      return this;
    }

    public Builder sourceCache(SourceCache c) {
      this.sourceCache = Objects.requireNonNull(c, "sourceCache");
      return this;
    }

    /** 0 for no limit. */
    public Builder maxReadBytesPerSecond(double rate) {
      this.maxReadBytesPerSecond = rate;
      return this;
    }

    /** Default: "worker@" and this host's name. */
    public Builder origin(String o) {
      this.origin = Objects.requireNonNull(o, "origin");
      return this;
    }

    public Builder pollTimeout(Duration d) {
      this.pollTimeout = d;
      return this;
    }

    /** null (the default) for half the lock duration the broker reports. */
    public Builder renewInterval(Duration d) {
      this.renewInterval = d;
      return this;
    }

    public Builder stopGrace(Duration d) {
      this.stopGrace = d;
      return this;
    }

    public Builder connectTimeout(Duration d) {
      this.connectTimeout = d;
      return this;
    }

    public Builder jobsTimeout(Duration d) {
      this.jobsTimeout = d;
      return this;
    }

    public Builder sendTimeout(Duration d) {
      this.sendTimeout = d;
      return this;
    }

    public Builder releaseBackoff(Duration d) {
      this.releaseBackoff = d;
      return this;
    }

    public Builder nbd(NbdOptions n) {
      this.nbd = Objects.requireNonNull(n, "nbd");
      return this;
    }

    public Builder idleBound(Duration d) {
      this.idleBound = d;
      return this;
    }

    /** @throws BadInputException naming the first field that is out of range */
    public WorkerConfig build() {
      if (threads < 1 || threads > MAX_THREADS) {
        throw new BadInputException("threads must be 1 to " + MAX_THREADS + ": " + threads);
      }
      if (!(maxReadBytesPerSecond >= 0) || Double.isInfinite(maxReadBytesPerSecond)) {
        throw new BadInputException("maxReadBytesPerSecond must be 0 (no limit) or positive: " + maxReadBytesPerSecond);
      }
      positive(pollTimeout, "pollTimeout");
      if (renewInterval != null) {
        positive(renewInterval, "renewInterval");
      }
      notNegative(stopGrace, "stopGrace");
      positive(connectTimeout, "connectTimeout");
      positive(jobsTimeout, "jobsTimeout");
      positive(sendTimeout, "sendTimeout");
      notNegative(releaseBackoff, "releaseBackoff");
      positive(idleBound, "idleBound");
      Builder fixed = copy();
      if (fixed.origin == null) {
        fixed.origin = "worker@" + hostName();
      }
      return new WorkerConfig(fixed);
    }

    private static void positive(Duration d, String what) {
      if (d == null || d.isNegative() || d.isZero()) {
        throw new BadInputException(what + " must be positive: " + d);
      }
    }

    private static void notNegative(Duration d, String what) {
      if (d == null || d.isNegative()) {
        throw new BadInputException(what + " must not be negative: " + d);
      }
    }
  }
}
