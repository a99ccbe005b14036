package io.zcow.worker.kafka;

import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.source.SourceCache;
import io.zcow.source.nbd.NbdOptions;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.Objects;

/**
 * How a {@link Worker} runs.
 *
 * @param kafka where the cluster is and the client settings
 * @param topics the topics and share group (production: {@link WorkerTopics#defaults()})
 * @param threads task loops, each taking one task at a time and compressing on a thread of its own
 * @param sources which sources this worker may read
 * @param sourceCache O_DIRECT or page-cache reads
 * @param maxReadBytesPerSecond ceiling on the reads of all threads together; 0 for none
 * @param origin names this worker in events and RangeDones ("worker@host")
 * @param pollTimeout how long an idle loop waits for a task before looking at its stop flag
 * @param renewInterval how often a running task's acquisition lock is renewed; null for half the
 *     lock duration the broker reports (15 s until it has reported one)
 * @param stopGrace on close, how long a running range may take to finish before it is released
 * @param connectTimeout how long {@link Worker#start()} tries to reach the cluster
 * @param jobsTimeout how long reading the jobs topic to its end may take
 * @param sendTimeout how long a finished range waits for the broker to acknowledge its records
 * @param releaseBackoff after releasing a task it cannot do, how long the whole worker takes no
 *     task, so the task goes to another worker rather than back to this one: every delivery counts
 *     against the broker's {@code group.share.delivery.count.limit} (5 by default), after which
 *     the task is archived
 * @param nbd how NBD sources are reached (timeouts, connections, TLS credentials)
 * @param idleBound how long a task loop may take no task while running jobs show ranges no worker
 *     has started, before it replaces its share consumer (see {@link ConsumerHealth})
 */
public record WorkerConfig(
    KafkaSettings kafka,
    WorkerTopics topics,
    int threads,
    SourcePolicy sources,
    SourceCache sourceCache,
    double maxReadBytesPerSecond,
    String origin,
    Duration pollTimeout,
    Duration renewInterval,
    Duration stopGrace,
    Duration connectTimeout,
    Duration jobsTimeout,
    Duration sendTimeout,
    Duration releaseBackoff,
    NbdOptions nbd,
    Duration idleBound) {

  public static final int MAX_THREADS = 1024;
  public static final Duration DEFAULT_IDLE_BOUND = Duration.ofSeconds(60);

  public WorkerConfig {
    Objects.requireNonNull(kafka, "kafka");
    Objects.requireNonNull(topics, "topics");
    Objects.requireNonNull(sources, "sources");
    Objects.requireNonNull(sourceCache, "sourceCache");
    Objects.requireNonNull(origin, "origin");
    Objects.requireNonNull(nbd, "nbd");
    if (threads < 1 || threads > MAX_THREADS) {
      throw new IllegalArgumentException("threads must be 1 to " + MAX_THREADS + ": " + threads);
    }
    if (!(maxReadBytesPerSecond >= 0) || Double.isInfinite(maxReadBytesPerSecond)) {
      throw new IllegalArgumentException("maxReadBytesPerSecond must be 0 (no limit) or positive: " + maxReadBytesPerSecond);
    }
    positive("pollTimeout", pollTimeout);
    if (renewInterval != null) {
      positive("renewInterval", renewInterval);
    }
    if (stopGrace == null || stopGrace.isNegative()) {
      throw new IllegalArgumentException("stopGrace must not be negative: " + stopGrace);
    }
    positive("connectTimeout", connectTimeout);
    positive("jobsTimeout", jobsTimeout);
    positive("sendTimeout", sendTimeout);
    if (releaseBackoff == null || releaseBackoff.isNegative()) {
      throw new IllegalArgumentException("releaseBackoff must not be negative: " + releaseBackoff);
    }
    positive("idleBound", idleBound);
  }

  private static void positive(String name, Duration d) {
    if (d == null || d.isNegative() || d.isZero()) {
      throw new IllegalArgumentException(name + " must be positive: " + d);
    }
  }

  /**
   * One thread per core, every source allowed, O_DIRECT where possible, no rate limit, lock
   * renewed at half its duration, 30 s to finish a range on close, 2 s without tasks after a
   * release, a new share consumer after 60 s without a task while work waits (the task lock's
   * length: by then a task another consumer held but did not start is started or back).
   */
  public static WorkerConfig defaults(KafkaSettings kafka) {
    return new WorkerConfig(kafka, WorkerTopics.defaults(), Runtime.getRuntime().availableProcessors(),
        SourcePolicy.allowAll(), SourceCache.AUTO, 0, "worker@" + hostName(), Duration.ofMillis(500), null,
        Duration.ofSeconds(30), Duration.ofSeconds(30), Duration.ofSeconds(30), Duration.ofMinutes(2), Duration.ofSeconds(2),
        NbdOptions.defaults(), DEFAULT_IDLE_BOUND);
  }

  static String hostName() {
    String env = System.getenv("HOSTNAME");
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      return env != null && !env.isBlank() ? env : "unknown-host";
    }
  }

  public WorkerConfig withTopics(WorkerTopics t) {
    return new WorkerConfig(kafka, t, threads, sources, sourceCache, maxReadBytesPerSecond, origin, pollTimeout,
        renewInterval, stopGrace, connectTimeout, jobsTimeout, sendTimeout, releaseBackoff, nbd, idleBound);
  }

  public WorkerConfig withNbd(NbdOptions n) {
    return new WorkerConfig(kafka, topics, threads, sources, sourceCache, maxReadBytesPerSecond, origin, pollTimeout,
        renewInterval, stopGrace, connectTimeout, jobsTimeout, sendTimeout, releaseBackoff, n, idleBound);
  }

  public WorkerConfig withThreads(int n) {
    return new WorkerConfig(kafka, topics, n, sources, sourceCache, maxReadBytesPerSecond, origin, pollTimeout,
        renewInterval, stopGrace, connectTimeout, jobsTimeout, sendTimeout, releaseBackoff, nbd, idleBound);
  }

  public WorkerConfig withSources(SourcePolicy p) {
    return new WorkerConfig(kafka, topics, threads, p, sourceCache, maxReadBytesPerSecond, origin, pollTimeout,
        renewInterval, stopGrace, connectTimeout, jobsTimeout, sendTimeout, releaseBackoff, nbd, idleBound);
  }

  public WorkerConfig withSourceCache(SourceCache c) {
    return new WorkerConfig(kafka, topics, threads, sources, c, maxReadBytesPerSecond, origin, pollTimeout,
        renewInterval, stopGrace, connectTimeout, jobsTimeout, sendTimeout, releaseBackoff, nbd, idleBound);
  }

  public WorkerConfig withMaxReadBytesPerSecond(double rate) {
    return new WorkerConfig(kafka, topics, threads, sources, sourceCache, rate, origin, pollTimeout,
        renewInterval, stopGrace, connectTimeout, jobsTimeout, sendTimeout, releaseBackoff, nbd, idleBound);
  }

  public WorkerConfig withOrigin(String o) {
    return new WorkerConfig(kafka, topics, threads, sources, sourceCache, maxReadBytesPerSecond, o, pollTimeout,
        renewInterval, stopGrace, connectTimeout, jobsTimeout, sendTimeout, releaseBackoff, nbd, idleBound);
  }

  public WorkerConfig withRenewInterval(Duration d) {
    return new WorkerConfig(kafka, topics, threads, sources, sourceCache, maxReadBytesPerSecond, origin, pollTimeout,
        d, stopGrace, connectTimeout, jobsTimeout, sendTimeout, releaseBackoff, nbd, idleBound);
  }

  public WorkerConfig withStopGrace(Duration d) {
    return new WorkerConfig(kafka, topics, threads, sources, sourceCache, maxReadBytesPerSecond, origin, pollTimeout,
        renewInterval, d, connectTimeout, jobsTimeout, sendTimeout, releaseBackoff, nbd, idleBound);
  }

  public WorkerConfig withConnectTimeout(Duration d) {
    return new WorkerConfig(kafka, topics, threads, sources, sourceCache, maxReadBytesPerSecond, origin, pollTimeout,
        renewInterval, stopGrace, d, jobsTimeout, sendTimeout, releaseBackoff, nbd, idleBound);
  }

  public WorkerConfig withReleaseBackoff(Duration d) {
    return new WorkerConfig(kafka, topics, threads, sources, sourceCache, maxReadBytesPerSecond, origin, pollTimeout,
        renewInterval, stopGrace, connectTimeout, jobsTimeout, sendTimeout, d, nbd, idleBound);
  }

  public WorkerConfig withIdleBound(Duration d) {
    return new WorkerConfig(kafka, topics, threads, sources, sourceCache, maxReadBytesPerSecond, origin, pollTimeout,
        renewInterval, stopGrace, connectTimeout, jobsTimeout, sendTimeout, releaseBackoff, nbd, d);
  }
}
