package io.zcow.testkit;

import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.test.TestingServer;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;

/**
 * A real ZooKeeper server in this JVM (Curator's {@link TestingServer}), one per JVM, started on
 * first use and stopped by a shutdown hook. Use {@link EmbeddedZooKeeperExtension} to get it
 * injected. Tests share it: give each test its own root with {@link #uniquePath(String)}.
 * Thread safe.
 */
public final class EmbeddedZooKeeper {

  /** Session timeout of {@link #newClient()}: short enough that tests see expiry quickly. */
  public static final Duration SESSION_TIMEOUT = Duration.ofSeconds(10);

  /** Curator warns when this exceeds the session timeout. */
  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);

  private static final Object LOCK = new Object();

  /** Guarded by LOCK. */
  private static EmbeddedZooKeeper shared;

  /** Guarded by LOCK: a failed start is not retried. */
  private static RuntimeException startFailure;

  private final TestingServer server;

  private EmbeddedZooKeeper(TestingServer server) {
    this.server = server;
  }

  /**
   * The server of this JVM, started on the first call.
   *
   * @throws IllegalStateException if the server could not start (now or on an earlier call)
   */
  public static EmbeddedZooKeeper shared() {
    synchronized (LOCK) {
      if (shared != null) {
        return shared;
      }
      if (startFailure != null) {
        throw new IllegalStateException("the embedded ZooKeeper failed to start earlier", startFailure);
      }
      try {
        shared = new EmbeddedZooKeeper(new TestingServer(true));
      } catch (Exception e) {
        startFailure = new IllegalStateException("could not start the embedded ZooKeeper: " + e, e);
        throw startFailure;
      }
      EmbeddedZooKeeper zk = shared;
      Runtime.getRuntime().addShutdownHook(new Thread(zk::stop, "embedded-zookeeper-shutdown"));
      return zk;
    }
  }

  /** The {@code host:port} clients connect to. */
  public String connectString() {
    return server.getConnectString();
  }

  /**
   * A started Curator client with a {@link #SESSION_TIMEOUT} session and a short retry policy.
   * The caller closes it.
   */
  public CuratorFramework newClient() {
    CuratorFramework client =
        CuratorFrameworkFactory.builder()
            .connectString(connectString())
            .sessionTimeoutMs((int) SESSION_TIMEOUT.toMillis())
            .connectionTimeoutMs((int) CONNECT_TIMEOUT.toMillis())
            .retryPolicy(new ExponentialBackoffRetry(100, 5))
            .build();
    client.start();
    return client;
  }

  /** A znode path no other test of this JVM will pick: {@code /prefix-<jvm token>-<counter>}. */
  public String uniquePath(String prefix) {
    return "/" + UniqueNames.next(prefix);
  }

  /**
   * Ends the client's current session on the server, as a session timeout would: its ephemeral
   * nodes are deleted, and the client sees the session expire (Curator: {@code LOST}, then a new
   * session and {@code RECONNECTED}). Curator's {@code KillSession} only fakes the expiry inside
   * the client and leaves the ephemeral nodes on the server until the real timeout; this does it
   * the way the server sees it, by closing the session from a second connection.
   *
   * @throws IllegalStateException if the client has no session or the server cannot be reached
   */
  public void expireSession(CuratorFramework client) {
    ZooKeeper handle;
    try {
      handle = client.getZookeeperClient().getZooKeeper();
    } catch (Exception e) {
      throw new IllegalStateException("the client has no ZooKeeper session to expire", e);
    }
    long sessionId = handle.getSessionId();
    byte[] password = handle.getSessionPasswd();
    if (sessionId == 0) {
      throw new IllegalStateException("the client is not connected: no session to expire");
    }
    CountDownLatch connected = new CountDownLatch(1);
    Watcher watcher =
        event -> {
          if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
            connected.countDown();
          }
        };
    try {
      ZooKeeper twin =
          new ZooKeeper(
              connectString(), (int) SESSION_TIMEOUT.toMillis(), watcher, sessionId, password);
      try {
        if (!connected.await(CONNECT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
          throw new IllegalStateException(
              "could not attach to session 0x" + Long.toHexString(sessionId) + " to expire it");
        }
      } finally {
        twin.close();
      }
    } catch (IOException e) {
      throw new IllegalStateException("could not connect to " + connectString(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while expiring a session", e);
    }
  }

  private void stop() {
    try {
      server.close();
    } catch (IOException e) {
      // The JVM is exiting; nothing left to tell.
    }
  }

  @Override
  public String toString() {
    return "EmbeddedZooKeeper[" + connectString() + "]";
  }
}
