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
import org.apache.curator.framework.CuratorFramework;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(EmbeddedZooKeeperExtension.class)
class WriterZkTest {

  private static WriterCheckpoint offsets(long o, long epoch) {
    return WriterCheckpoint.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setLeaderEpoch(epoch)
        .addOffsets(PartitionOffset.newBuilder().setPartition(0).setOffset(o)).build();
  }

  @Test
  void aDeposedLeaderCanNeverCommit(EmbeddedZooKeeper server) {
    String group = server.uniquePath("zcow") + "/g";
    try (CuratorFramework a = server.newClient(); CuratorFramework b = server.newClient()) {
      WriterZk old = new WriterZk(a, group);
      long e1 = old.bumpEpoch();
      old.commit(List.of(new WriterZk.JobCommit("j", offsets(10, e1).toBuilder().setJobId("j").build())),
          offsets(10, e1));
      WriterZk fresh = new WriterZk(b, group);
      long e2 = fresh.bumpEpoch();
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
    }
  }
}
