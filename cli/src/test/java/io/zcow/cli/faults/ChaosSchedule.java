package io.zcow.cli.faults;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The chaos run's faults, drawn from a seed alone: each at a fixed offset from the run's start,
 * with a kind, a slot (which worker, which broker, the leader or the standby writer, which running
 * job's coordinator) and a length (how long the role stays dead, frozen or cut off). The same seed
 * and run length give the same list, whatever the cluster does; only what a slot names when the
 * fault fires ("the leader", "the second running job") is read from the cluster then.
 *
 * <p>The schedule is hostile within what zcow promises to survive (docs/RELIABILITY.md): at most
 * one broker of three down at a time, and the next broker fault only {@link #BROKER_MARGIN} after
 * the last one's restart (the restarted node catches up); at most one writer fault (killed, frozen
 * or cut off Kafka) or ZooKeeper restart at a time, and the next one only {@link #WRITER_MARGIN}
 * after the last one ended (a restarted writer has rejoined as a standby, a cut-off leader as a
 * candidate), so the two writers are never both out; at most two of the three workers out at once;
 * one coordinator dead at a time. Faults of different groups overlap freely.
 */
public final class ChaosSchedule {
  /** Time after a broker fault ends (its restart) before the next broker fault may start. */
  static final Duration BROKER_MARGIN = Duration.ofSeconds(25);
  /** Time after a writer or ZooKeeper fault ends before the next one may start. */
  static final Duration WRITER_MARGIN = Duration.ofSeconds(15);
  /** No fault before the first job has started. */
  static final Duration FIRST = Duration.ofSeconds(15);
  static final int WORKERS = 3;
  static final int BROKERS = 3;

  /** What a fault does. The group decides which faults may overlap. */
  public enum Kind {
    KILL_WORKER("kill -9 worker, restart", Group.WORKER, 3, 1, 10),
    PAUSE_WORKER("SIGSTOP worker, SIGCONT", Group.WORKER, 2, 2, 30),
    CUT_WORKER("cut worker off Kafka, heal", Group.WORKER, 2, 5, 30),
    KILL_WRITER("kill -9 writer, restart", Group.WRITER, 2, 1, 10),
    PAUSE_WRITER("SIGSTOP writer, SIGCONT", Group.WRITER, 1, 2, 12),
    CUT_WRITER("cut writer off Kafka, heal", Group.WRITER, 1, 5, 20),
    KILL_ZOOKEEPER("kill -9 ZooKeeper, restart", Group.WRITER, 1, 0, 8),
    KILL_BROKER("kill -9 broker, restart", Group.BROKER, 2, 0, 15),
    KILL_COORDINATOR("kill -9 coordinator, run again", Group.COORDINATOR, 2, 1, 8);

    final String text;
    final Group group;
    final int weight;
    final int minSeconds;
    final int maxSeconds;

    Kind(String text, Group group, int weight, int minSeconds, int maxSeconds) {
      this.text = text;
      this.group = group;
      this.weight = weight;
      this.minSeconds = minSeconds;
      this.maxSeconds = maxSeconds;
    }

    /** How many slots the kind has: workers, brokers, leader/standby, running jobs (resolved modulo). */
    int slots() {
      return switch (group) {
        case WORKER -> WORKERS;
        case BROKER -> BROKERS;
        case WRITER -> this == KILL_ZOOKEEPER ? 1 : 2;
        case COORDINATOR -> 4;
      };
    }
  }

  enum Group { WORKER, WRITER, BROKER, COORDINATOR }

  /**
   * One fault: at {@code at} from the start, {@code kind} on {@code slot} for {@code length}.
   * Writer slots: 0 the leader, 1 the standby; coordinator slot k: the k-th running job (modulo).
   */
  public record Fault(int n, Duration at, Kind kind, int slot, Duration length) {
    public Duration end() {
      return at.plus(length);
    }

    /** The slot as a role ("worker-2", "leader writer", "kafka-3", "job slot 1"). */
    public String target() {
      return switch (kind.group) {
        case WORKER -> "worker-" + (slot + 1);
        case BROKER -> "kafka-" + (slot + 1);
        case WRITER -> kind == Kind.KILL_ZOOKEEPER ? "zookeeper" : slot == 0 ? "leader writer" : "standby writer";
        case COORDINATOR -> "coordinator of running job " + slot;
      };
    }

    @Override
    public String toString() {
      return String.format(Locale.ROOT, "#%d at %s: %s (%s) for %d s", n, clock(at), kind.text, target(),
          length.toSeconds());
    }
  }

  private ChaosSchedule() {}

  /** Faults from {@link #FIRST} to {@code runFor} after the start, by {@code seed} alone. */
  public static List<Fault> draw(long seed, Duration runFor) {
    Random rnd = new Random(seed);
    List<Fault> out = new ArrayList<>();
    int total = 0;
    for (Kind k : Kind.values()) {
      total += k.weight;
    }
    Duration at = FIRST;
    while (at.compareTo(runFor) < 0) {
      for (int attempt = 0; attempt < 4; attempt++) { // a kind that does not fit now: draw another
        int pick = rnd.nextInt(total);
        Kind kind = null;
        for (Kind k : Kind.values()) {
          pick -= k.weight;
          if (pick < 0) {
            kind = k;
            break;
          }
        }
        int slot = rnd.nextInt(kind.slots());
        Duration length = Duration.ofSeconds(kind.minSeconds + rnd.nextInt(kind.maxSeconds - kind.minSeconds + 1));
        Fault f = new Fault(out.size() + 1, at, kind, slot, length);
        if (fits(out, f)) {
          out.add(f);
          break;
        }
      }
      at = at.plusSeconds(4 + rnd.nextInt(12));
    }
    return List.copyOf(out);
  }

  /** Whether {@code f} keeps the promises above given the faults before it. */
  static boolean fits(List<Fault> before, Fault f) {
    int workersOut = 0;
    for (Fault o : before) {
      if (o.kind.group != f.kind.group) {
        continue;
      }
      Duration margin = switch (f.kind.group) {
        case BROKER -> BROKER_MARGIN;
        case WRITER -> WRITER_MARGIN;
        case WORKER, COORDINATOR -> Duration.ZERO;
      };
      boolean overlaps = o.end().plus(margin).compareTo(f.at()) > 0;
      if (!overlaps) {
        continue;
      }
      if (f.kind.group != Group.WORKER) {
        return false;
      }
      if (o.slot == f.slot) {
        return false;
      }
      workersOut++;
    }
    return workersOut < WORKERS - 1;
  }

  /** {@code m:ss} (or {@code m:ss.s} with tenths). */
  static String clock(Duration d) {
    long s = d.toSeconds();
    return String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
  }
}
