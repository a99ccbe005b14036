package io.zcow.writer;

import io.zcow.RetriableException;
import io.zcow.proto.JobState;
import io.zcow.proto.Wire;
import io.zcow.proto.WriterCheckpoint;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

/**
 * The writer group's durable state in ZooKeeper, under {@code ROOT/GROUP}:
 *
 * <ul>
 *   <li>{@code leader} — the Curator LeaderLatch of the group;
 *   <li>{@code epoch} — bumped by each new leader; its znode version is the leader's epoch, and
 *       every commit is a transaction that checks it, so a deposed leader can never commit;
 *   <li>{@code offsets} — a WriterCheckpoint holding only the next offsets of the chunks topic: every
 *       job that was running at that commit is checkpointed at exactly these offsets, and every job
 *       started later has all its records at or after them;
 *   <li>{@code jobs/JOB/checkpoint} — the job's WriterCheckpoint: the image checkpoint (a few
 *       dozen bytes naming the state file {@code TARGET.part.state-SEQ} beside the image, which holds
 *       the per-range progress), the offsets, the epoch, and the ranges issued to workers (at most
 *       the job's window). Its size does not grow with the disk;
 *   <li>{@code jobs/JOB/state} — a terminal state ("DONE 1700000000000" = state and the JobSpec's
 *       created_at_ms, then a reason line).
 * </ul>
 *
 * Not thread safe: used by the writer loop's thread only.
 */
final class WriterZk {
  private final CuratorFramework zk;
  private final String base;
  private int epochVersion = -1;

  WriterZk(CuratorFramework zk, String groupPath) {
    this.zk = zk;
    this.base = groupPath;
  }

  static String leaderPath(String groupPath) {
    return groupPath + "/leader";
  }

  /**
   * Starts a term: bumps the group's epoch and returns it, only while {@code latchNode} (this
   * writer's LeaderLatch node, {@code LeaderLatch.getOurPath()}) is the group's leader in
   * ZooKeeper: the lowest node under {@code leader}, and still there in the transaction that
   * bumps. The latch's own flag is not enough: a writer frozen past its session thaws believing
   * it leads until Curator delivers LOST, and a bump on that belief (its retry carried over to the
   * new session) deposed the leader elected meanwhile (the chaos run, seed 1, docs/RELIABILITY.md).
   *
   * @throws DeposedException when {@code latchNode} is not the leader's node (or is gone)
   */
  long bumpEpoch(String latchNode) {
    String path = base + "/epoch";
    ensure(path);
    for (;;) {
      try {
        String leader = leaderNode();
        if (latchNode == null || !latchNode.equals(leader)) {
          throw new DeposedException("not the group's leader in ZooKeeper (its node is " + leader + ", ours "
              + latchNode + "): no term started", null);
        }
        Stat stat = new Stat();
        zk.getData().storingStatIn(stat).forPath(path);
        zk.transaction().forOperations(List.of(zk.transactionOp().check().forPath(leader),
            zk.transactionOp().setData().withVersion(stat.getVersion())
                .forPath(path, Long.toString(stat.getVersion() + 1L).getBytes(StandardCharsets.UTF_8))));
        epochVersion = stat.getVersion() + 1;
        return epochVersion;
      } catch (KeeperException.BadVersionException e) {
        // another candidate bumped it at the same moment: read again
      } catch (KeeperException.NoNodeException e) {
        // our node went between the read and the bump: the next read says who leads
      } catch (DeposedException e) {
        throw e;
      } catch (Exception e) {
        throw failure("bump the epoch", e);
      }
    }
  }

  /** The path of the lowest LeaderLatch node of the group (the leader's), or null when there is none. */
  private String leaderNode() throws Exception {
    String dir = leaderPath(base);
    List<String> children;
    try {
      children = zk.getChildren().forPath(dir);
    } catch (KeeperException.NoNodeException e) {
      return null;
    }
    // LeaderLatch names its nodes PREFIX-latch-SEQUENCE (ten digits): the lowest sequence leads.
    return children.stream().min(java.util.Comparator.comparing(WriterZk::latchSequence))
        .map(c -> dir + "/" + c).orElse(null);
  }

  private static String latchSequence(String node) {
    int at = node.lastIndexOf("latch-");
    return at < 0 ? node : node.substring(at + "latch-".length());
  }

  long epoch() {
    return epochVersion;
  }

  Optional<WriterCheckpoint> groupOffsets() {
    return readCheckpoint(base + "/offsets");
  }

  /** Whether a checkpoint was committed for the job (damaged or not: nothing is decoded). */
  boolean hasCheckpoint(String job) {
    byte[] b = read(jobPath(job) + "/checkpoint");
    return b != null && b.length > 0;
  }

  Optional<WriterCheckpoint> checkpoint(String job) {
    return readCheckpoint(jobPath(job) + "/checkpoint");
  }

  /** A terminal state recorded for the job, or empty. */
  Optional<TerminalState> terminalState(String job) {
    byte[] b = read(jobPath(job) + "/state");
    if (b == null || b.length == 0) {
      return Optional.empty();
    }
    String[] lines = new String(b, StandardCharsets.UTF_8).split("\n", 2);
    String[] head = lines[0].split(" ");
    try {
      return Optional.of(new TerminalState(JobState.valueOf(head[0]), head.length > 1 ? Long.parseLong(head[1]) : 0,
          lines.length > 1 ? lines[1] : "", head.length > 2 && head[2].equals(REFUSED)));
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
  }

  /**
   * How a job ended, kept as "STATE CREATED_AT[ refused]\nREASON".
   *
   * @param refused the writer refused the job's input (see JobSpec.refused)
   */
  record TerminalState(JobState state, long createdAtMs, String reason, boolean refused) {}

  private static final String REFUSED = "refused";

  /** One job's part of a checkpoint commit. */
  record JobCommit(String job, WriterCheckpoint checkpoint) {}

  /**
   * Commits checkpoints of several jobs and the group's offsets atomically, only if this writer's
   * epoch is still the group's.
   *
   * @throws DeposedException when a newer leader has bumped the epoch
   */
  void commit(List<JobCommit> jobs, WriterCheckpoint offsets) {
    List<CuratorOp> ops = new ArrayList<>();
    try {
      ensure(base + "/offsets");
      ops.add(zk.transactionOp().check().withVersion(epochVersion).forPath(base + "/epoch"));
      for (JobCommit j : jobs) {
        ensure(jobPath(j.job()) + "/checkpoint");
        ops.add(zk.transactionOp().setData().forPath(jobPath(j.job()) + "/checkpoint", j.checkpoint().toByteArray()));
      }
      ops.add(zk.transactionOp().setData().forPath(base + "/offsets", offsets.toByteArray()));
    } catch (Exception e) {
      throw failure("prepare a checkpoint commit", e);
    }
    run(ops, "commit a checkpoint");
  }

  /** Records a terminal state, only under this writer's epoch. */
  void setTerminal(String job, TerminalState end) {
    JobState state = end.state();
    String path = jobPath(job) + "/state";
    ensure(path);
    byte[] data = (state.name() + " " + end.createdAtMs() + (end.refused() ? " " + REFUSED : "") + "\n"
        + end.reason()).getBytes(StandardCharsets.UTF_8);
    try {
      run(List.of(zk.transactionOp().check().withVersion(epochVersion).forPath(base + "/epoch"),
          zk.transactionOp().setData().forPath(path, data)), "record state " + state + " of job " + job);
    } catch (DeposedException e) {
      throw e;
    } catch (Exception e) {
      throw failure("record the state of job " + job, e);
    }
  }

  /** Forgets a job's checkpoint (a cancelled job), under this writer's epoch. */
  void clearCheckpoint(String job) {
    String path = jobPath(job) + "/checkpoint";
    if (read(path) == null) {
      return;
    }
    try {
      run(List.of(zk.transactionOp().check().withVersion(epochVersion).forPath(base + "/epoch"),
          zk.transactionOp().setData().forPath(path, new byte[0])), "clear the checkpoint of job " + job);
    } catch (DeposedException e) {
      throw e;
    } catch (Exception e) {
      throw failure("clear the checkpoint of job " + job, e);
    }
  }

  private void run(List<CuratorOp> ops, String what) {
    try {
      zk.transaction().forOperations(ops);
    } catch (KeeperException.BadVersionException e) {
      throw new DeposedException("cannot " + what + ": epoch " + epochVersion + " is no longer the group's", e);
    } catch (Exception e) {
      throw failure(what, e);
    }
  }

  private String jobPath(String job) {
    return base + "/jobs/" + job;
  }

  private Optional<WriterCheckpoint> readCheckpoint(String path) {
    byte[] b = read(path);
    if (b == null || b.length == 0) {
      return Optional.empty();
    }
    Wire.Decoded<WriterCheckpoint> d = Wire.writerCheckpoint(b);
    if (d instanceof Wire.Decoded.Ok<WriterCheckpoint> ok) {
      return Optional.of(ok.value());
    }
    throw new io.zcow.CorruptException("checkpoint at " + path + ": " + ((Wire.Decoded.Bad<WriterCheckpoint>) d).reason());
  }

  private byte[] read(String path) {
    try {
      return zk.getData().forPath(path);
    } catch (KeeperException.NoNodeException e) {
      return null;
    } catch (Exception e) {
      throw failure("read " + path, e);
    }
  }

  private void ensure(String path) {
    try {
      if (zk.checkExists().forPath(path) == null) {
        zk.create().creatingParentContainersIfNeeded().forPath(path, new byte[0]);
      }
    } catch (KeeperException.NodeExistsException e) {
      // created meanwhile
    } catch (Exception e) {
      throw failure("create " + path, e);
    }
  }

  private static RuntimeException failure(String what, Exception e) {
    if (e instanceof InterruptedException) {
      Thread.currentThread().interrupt();
    }
    if (e instanceof KeeperException.ConnectionLossException || e instanceof KeeperException.SessionExpiredException) {
      return new DeposedException("cannot " + what + ": lost ZooKeeper (" + e.getMessage() + ")", e);
    }
    return new RetriableException("cannot " + what + ": " + e, e);
  }
}
