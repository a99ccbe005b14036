package io.zcow.cli.faults;

import io.zcow.cli.faults.ChaosSchedule.Fault;
import io.zcow.testkit.TcpProxy;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Plays a {@link ChaosSchedule} on a {@link LoopbackCluster} in a thread of its own: each fault
 * is injected at its offset from the start and ended after its length (the role restarted on its
 * arguments, continued, or its proxies healed), in the schedule's order. An action that blocks
 * (a broker's restart returns once it serves) delays the ones after it, never reorders them, so
 * the schedule's promises (one broker, one writer out at a time) hold whatever the delays; every
 * action is logged with its real time. {@link #stop()} injects nothing more and ends at once every
 * fault still on, so the cluster is whole again when {@link #join} returns.
 *
 * <p>The fault thread owns {@code writers} and {@code workers} (a restart replaces the Role); the
 * job thread reads them only for logs. Kafka clients 0 and 1 of the cluster are the writers, 2..4
 * the workers ({@link LoopbackCluster#startWithKafkaClients}).
 */
final class ChaosFaults implements Runnable {
  /** A fault's resolved target, kept from its injection to its end. */
  private record On(Fault fault, int index, Role role, ChaosJob job) {}

  private record Step(Duration at, Fault fault, boolean inject) {}

  private final LoopbackCluster cluster;
  private final Role[] writers;
  private final Role[] workers;
  private final List<Step> steps = new ArrayList<>();
  private final Map<Integer, On> on = new HashMap<>();
  private final ChaosLog log;
  private final Supplier<List<ChaosJob>> running;
  private final Thread thread = new Thread(this, "chaos-faults");
  private volatile boolean stopped;
  private volatile Throwable error;

  ChaosFaults(LoopbackCluster cluster, Role[] writers, Role[] workers, List<Fault> schedule, ChaosLog log,
      Supplier<List<ChaosJob>> running) {
    this.cluster = cluster;
    this.writers = writers;
    this.workers = workers;
    this.log = log;
    this.running = running;
    for (Fault f : schedule) {
      steps.add(new Step(f.at(), f, true));
      steps.add(new Step(f.end(), f, false));
    }
    // By time; at the same time an end before an injection, so a slot is free again first.
    steps.sort(Comparator.comparing(Step::at).thenComparing(Step::inject).thenComparingInt(s -> s.fault().n()));
    thread.setDaemon(true);
  }

  void start() {
    thread.start();
  }

  /** Injects nothing more; faults still on are ended at once. */
  void stop() {
    stopped = true;
  }

  /** Waits for the thread (it ends every fault still on first); returns its error, if it had one. */
  Throwable join(Duration timeout) throws InterruptedException {
    thread.join(timeout.toMillis());
    if (thread.isAlive()) {
      throw new IllegalStateException("the fault thread did not end within " + timeout);
    }
    return error;
  }

  /** The error that ended the fault thread early, or null. */
  Throwable error() {
    return error;
  }

  @Override
  public void run() {
    try {
      for (Step s : steps) {
        if (!stopped) {
          sleepUntil(log.start().plus(s.at()));
        }
        if (s.inject() && !stopped) {
          inject(s.fault());
        } else if (!s.inject() && on.containsKey(s.fault().n())) {
          end(on.remove(s.fault().n()));
        }
      }
    } catch (Throwable t) { // a role that would not restart: the run fails, with the cluster left as it is
      error = t;
      System.out.println("chaos fault thread failed: " + t);
    }
  }

  /** Sleeps until {@code when} or {@link #stop()} (not by interrupt: a restart under way must not be cut short). */
  private void sleepUntil(Instant when) {
    for (long ms; !stopped && (ms = Duration.between(Instant.now(), when).toMillis()) > 0; ) {
      FaultSuiteTest.sleep(Math.min(ms, 200));
    }
  }

  private void inject(Fault f) {
    switch (f.kind()) {
      case KILL_WORKER, PAUSE_WORKER, CUT_WORKER -> {
        Role w = workers[f.slot()];
        act(f, w, f.slot(), null);
      }
      case KILL_WRITER, PAUSE_WRITER, CUT_WRITER -> {
        int leader = leader();
        int i = f.slot() == 0 ? leader : 1 - leader;
        act(f, writers[i], i, null);
      }
      case KILL_ZOOKEEPER -> act(f, cluster.zooKeeperServer(), 0, null);
      case KILL_BROKER -> act(f, cluster.kafkaServers().get(f.slot()), f.slot(), null);
      case KILL_COORDINATOR -> {
        List<ChaosJob> jobs = running.get();
        if (jobs.isEmpty()) {
          log.action(f, true, "-", "skipped: no job running", null);
          return;
        }
        ChaosJob job = jobs.get(f.slot() % jobs.size());
        Role killed = job.killCoordinator();
        if (killed == null) {
          log.action(f, true, "backup of " + job.id, "skipped: its coordinator had exited", job.id);
          return;
        }
        on.put(f.n(), new On(f, 0, killed, job));
        log.action(f, true, describe(killed), "kill -9 (job " + job.id + ")", job.id);
      }
    }
  }

  private void act(Fault f, Role role, int index, ChaosJob job) {
    String done = switch (f.kind()) {
      case KILL_WORKER, KILL_WRITER, KILL_ZOOKEEPER, KILL_BROKER -> {
        role.kill();
        yield "kill -9";
      }
      case PAUSE_WORKER, PAUSE_WRITER -> {
        role.stop();
        yield "SIGSTOP";
      }
      case CUT_WORKER -> {
        cluster.cutKafka(2 + index, TcpProxy.Mode.BLACKHOLE);
        yield "Kafka proxies cut (blackhole)";
      }
      case CUT_WRITER -> {
        cluster.cutKafka(index, TcpProxy.Mode.BLACKHOLE);
        yield "Kafka proxies cut (blackhole)";
      }
      case KILL_COORDINATOR -> throw new IllegalStateException("coordinators are killed through their job");
    };
    on.put(f.n(), new On(f, index, role, job));
    long epoch = role.lastNumber(WriterLog.LEADER);
    String extra = f.kind().group != ChaosSchedule.Group.WRITER || f.kind() == ChaosSchedule.Kind.KILL_ZOOKEEPER ? ""
        : epoch < 0 ? " (never led)" : " (last led epoch " + epoch + ")";
    log.action(f, true, describe(role) + extra, done, null);
  }

  private void end(On o) {
    Fault f = o.fault();
    String done;
    Role role = o.role();
    switch (f.kind()) {
      case KILL_WORKER -> {
        workers[o.index()] = role = cluster.restart(role);
        done = "restarted";
      }
      case KILL_WRITER -> {
        writers[o.index()] = role = cluster.restart(role);
        done = "restarted";
      }
      case KILL_ZOOKEEPER, KILL_BROKER -> {
        role = cluster.restart(role);
        done = "restarted, serving";
      }
      case PAUSE_WORKER, PAUSE_WRITER -> {
        role.cont();
        done = "SIGCONT";
      }
      case CUT_WORKER -> {
        cluster.healKafka(2 + o.index());
        done = "healed";
      }
      case CUT_WRITER -> {
        cluster.healKafka(o.index());
        done = "healed";
      }
      case KILL_COORDINATOR -> {
        role = o.job().rerun(cluster);
        done = "same command run again (job " + o.job().id + ")";
      }
      default -> throw new IllegalStateException(f.kind().name());
    }
    log.action(f, false, describe(role), done, o.job() == null ? null : o.job().id);
  }

  /** The live writer that logged the highest epoch (writer 0 when neither has led yet). */
  private int leader() {
    long e0 = writers[0].isAlive() ? writers[0].lastNumber(WriterLog.LEADER) : -2;
    long e1 = writers[1].isAlive() ? writers[1].lastNumber(WriterLog.LEADER) : -2;
    return e1 > e0 ? 1 : 0;
  }

  private static String describe(Role r) {
    return r.name() + " (pid " + r.pid() + ")";
  }
}
