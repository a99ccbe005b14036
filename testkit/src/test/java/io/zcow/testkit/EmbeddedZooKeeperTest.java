package io.zcow.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.zookeeper.CreateMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(EmbeddedZooKeeperExtension.class)
class EmbeddedZooKeeperTest {

  @Test
  void curatorCreatesAndReadsANode(EmbeddedZooKeeper zk) throws Exception {
    String path = zk.uniquePath("writers") + "/checkpoint";
    byte[] data = "range 7".getBytes(StandardCharsets.UTF_8);
    try (CuratorFramework client = zk.newClient()) {
      client.create().creatingParentsIfNeeded().forPath(path, data);
      assertArrayEquals(data, client.getData().forPath(path));
    }
    try (CuratorFramework other = zk.newClient()) {
      assertArrayEquals(data, other.getData().forPath(path), "seen by another session");
    }
  }

  @Test
  void expiredSessionIsLostThenReconnectedAndItsEphemeralNodesAreGone(EmbeddedZooKeeper zk)
      throws Exception {
    String path = zk.uniquePath("leader") + "/latch";
    List<ConnectionState> states = new CopyOnWriteArrayList<>();
    try (CuratorFramework client = zk.newClient()) {
      assertTrue(client.blockUntilConnected(15, TimeUnit.SECONDS));
      client.getConnectionStateListenable().addListener((c, state) -> states.add(state));
      client.create().creatingParentsIfNeeded().withMode(CreateMode.EPHEMERAL).forPath(path);
      long oldSession = client.getZookeeperClient().getZooKeeper().getSessionId();

      zk.expireSession(client);

      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (!states.contains(ConnectionState.RECONNECTED) && System.nanoTime() < deadline) {
        Thread.sleep(50);
      }
      assertTrue(states.contains(ConnectionState.LOST), "states seen: " + states);
      assertTrue(
          states.indexOf(ConnectionState.LOST) < states.indexOf(ConnectionState.RECONNECTED),
          "LOST before RECONNECTED: " + states);
      assertNull(client.checkExists().forPath(path), "ephemeral node of the expired session");
      assertNotNull(client.checkExists().forPath(path.substring(0, path.lastIndexOf('/'))));
      assertNotEquals(oldSession, client.getZookeeperClient().getZooKeeper().getSessionId());
    }
  }
}
