package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.JobState;
import io.zcow.proto.PartitionOffset;
import io.zcow.proto.Wire;
import io.zcow.proto.WriterCheckpoint;
import io.zcow.testkit.EmbeddedZooKeeper;
import io.zcow.testkit.EmbeddedZooKeeperExtension;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(EmbeddedZooKeeperExtension.class)
class WriterZkTest {

  private static WriterCheckpoint offsets(long o, long epoch) {
    return WriterCheckpoint.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setLeaderEpoch(epoch)
        .addOffsets(PartitionOffset.newBuilder().setPartition(0).setOffset(o)).build();
  }

  /** A LeaderLatch of the group, started; with {@code lead}, once it leads. */
  private static LeaderLatch latch(CuratorFramework client, String group, String id, boolean lead) throws Exception {
    LeaderLatch l = new LeaderLatch(client, WriterZk.leaderPath(group), id);
    l.start();
    if (lead) {
      assertTrue(l.await(30, TimeUnit.SECONDS), id + " leads");
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (l.getOurPath() == null && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    return l;
  }

  @Test
  void aDeposedLeaderCanNeverCommit(EmbeddedZooKeeper server) throws Exception {
    String group = server.uniquePath("zcow") + "/g";
    try (CuratorFramework a = server.newClient(); CuratorFramework b = server.newClient()) {
      LeaderLatch la = latch(a, group, "a", true);
      LeaderLatch lb = latch(b, group, "b", false);
      WriterZk old = new WriterZk(a, group);
      long e1 = old.bumpEpoch(la.getOurPath());
      old.commit(List.of(new WriterZk.JobCommit("j", offsets(10, e1).toBuilder().setJobId("j").build())),
          offsets(10, e1));
      la.close();
      assertTrue(lb.await(30, TimeUnit.SECONDS), "b leads once a left");
      WriterZk fresh = new WriterZk(b, group);
      long e2 = fresh.bumpEpoch(lb.getOurPath());
      assertTrue(e2 > e1);
      assertThrows(DeposedException.class, () -> old.commit(List.of(), offsets(99, e1)));
      assertThrows(DeposedException.class, () -> old.setTerminal("j",
          new WriterZk.TerminalState(JobState.JOB_STATE_DONE, 1, "", false)));
      assertEquals(10, fresh.groupOffsets().orElseThrow().getOffsets(0).getOffset());
      assertEquals("j", fresh.checkpoint("j").orElseThrow().getJobId());
      assertTrue(fresh.terminalState("j").isEmpty());
      fresh.commit(List.of(), offsets(20, e2));
      fresh.setTerminal("j", new WriterZk.TerminalState(JobState.JOB_STATE_FAILED, 42, "range 7 re-queued 5 times",
          false));
      assertEquals(20, fresh.groupOffsets().orElseThrow().getOffsets(0).getOffset());
      WriterZk.TerminalState t = fresh.terminalState("j").orElseThrow();
      assertEquals(JobState.JOB_STATE_FAILED, t.state());
      assertEquals(42, t.createdAtMs());
      assertEquals("range 7 re-queued 5 times", t.reason());
      assertFalse(t.refused());
      fresh.setTerminal("k", new WriterZk.TerminalState(JobState.JOB_STATE_FAILED, 43, "target a already exists",
          true));
      assertEquals(new WriterZk.TerminalState(JobState.JOB_STATE_FAILED, 43, "target a already exists", true),
          fresh.terminalState("k").orElseThrow());
      lb.close();
    }
  }

  /**
   * Found by the chaos run (seed 1): a leader frozen past its session thawed with its latch still
   * saying it led, bumped the epoch on the new session and so deposed the writer elected meanwhile.
   * A term starts only while the writer's latch node is the leader's in ZooKeeper.
   */
  @Test
  void aCandidateWhoseLatchNodeIsNotTheLeadersStartsNoTermAndDeposesNobody(EmbeddedZooKeeper server)
      throws Exception {
    String group = server.uniquePath("zcow") + "/g";
    try (CuratorFramework a = server.newClient(); CuratorFramework b = server.newClient()) {
      LeaderLatch leader = latch(a, group, "leader", true);
      LeaderLatch other = latch(b, group, "thawed", false);
      WriterZk elected = new WriterZk(a, group);
      long epoch = elected.bumpEpoch(leader.getOurPath());

      WriterZk thawed = new WriterZk(b, group);
      assertThrows(DeposedException.class, () -> thawed.bumpEpoch(other.getOurPath()));
      String gone = other.getOurPath();
      other.close();
      assertThrows(DeposedException.class, () -> thawed.bumpEpoch(gone), "a node that is gone leads nothing");
      assertThrows(DeposedException.class, () -> thawed.bumpEpoch(null));
      // The elected writer's epoch is still the group's: it commits.
      elected.commit(List.of(), offsets(5, epoch));
      assertEquals(5, elected.groupOffsets().orElseThrow().getOffsets(0).getOffset());
      assertEquals(epoch, elected.bumpEpoch(leader.getOurPath()) - 1, "the next bump is the leader's own");
      leader.close();
    }
  }
}
