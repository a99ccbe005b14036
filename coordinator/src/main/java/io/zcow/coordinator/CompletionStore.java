package io.zcow.coordinator;

import io.zcow.RetriableException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.BitSet;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.KeeperException;

/**
 * Reads, never writes, what the writer group keeps in ZooKeeper about a job: the completed-range
 * bitmap of its last committed checkpoint ({@code ZKROOT/GROUP/jobs/JOB/ranges}) and its terminal
 * state ({@code .../state}: "STATE createdAtMs\nreason"). This is how a re-run coordinator
 * submits only the ranges that are missing.
 *
 * <p>Thread safe (Curator is).
 */
public final class CompletionStore implements AutoCloseable {
  /** The writers' default ZooKeeper root (WriterConfig.DEFAULT_ZK_ROOT). */
  public static final String DEFAULT_ZK_ROOT = "/zcow/writers";

  /** A terminal state the writer recorded. */
  public record Terminal(String state, long createdAtMs, String reason) {}

  private final CuratorFramework zk;
  private final String groupPath;

  private CompletionStore(CuratorFramework zk, String groupPath) {
    this.zk = zk;
    this.groupPath = groupPath;
  }

  /**
   * Connects to {@code connectString}.
   *
   * @throws RetriableException when ZooKeeper cannot be reached within {@code timeout}
   */
  public static CompletionStore connect(String connectString, String zkRoot, String group, Duration timeout) {
    CuratorFramework zk = CuratorFrameworkFactory.builder().connectString(connectString)
        .sessionTimeoutMs(30_000).connectionTimeoutMs((int) timeout.toMillis())
        .retryPolicy(new ExponentialBackoffRetry(200, 3)).build();
    zk.start();
    try {
      if (!zk.blockUntilConnected((int) timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        zk.close();
        throw new RetriableException("ZooKeeper at " + connectString + " is not reachable within "
            + timeout.toSeconds() + " s", null);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      zk.close();
      throw new RetriableException("interrupted while connecting to ZooKeeper at " + connectString, e);
    }
    return new CompletionStore(zk, zkRoot + "/" + group);
  }

  /** Ranges complete at the job's last committed checkpoint; empty when there is none. */
  public BitSet completedRanges(String job) {
    byte[] b = read(groupPath + "/jobs/" + job + "/ranges");
    return b == null ? new BitSet() : BitSet.valueOf(b);
  }

  public Optional<Terminal> terminal(String job) {
    byte[] b = read(groupPath + "/jobs/" + job + "/state");
    if (b == null || b.length == 0) {
      return Optional.empty();
    }
    String[] lines = new String(b, StandardCharsets.UTF_8).split("\n", 2);
    String[] head = lines[0].split(" ");
    long created;
    try {
      created = head.length > 1 ? Long.parseLong(head[1]) : 0;
    } catch (NumberFormatException e) {
      created = 0;
    }
    return Optional.of(new Terminal(head[0], created, lines.length > 1 ? lines[1] : ""));
  }

  private byte[] read(String path) {
    try {
      return zk.getData().forPath(path);
    } catch (KeeperException.NoNodeException e) {
      return null;
    } catch (Exception e) {
      throw new RetriableException("could not read " + path + " from ZooKeeper: " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    zk.close();
  }
}
