package io.zcow.cli.embedded;

import java.io.Closeable;
import java.nio.file.Path;

/**
 * A cluster of one in this process: the ZooKeeper the writers elect their leader in and the Kafka
 * broker every role talks through. Closing stops the broker first (its clients may still be
 * finishing), then ZooKeeper.
 */
public final class DevCluster implements Closeable {
  private final EmbeddedZooKeeper zooKeeper;
  private final EmbeddedBroker broker;

  private DevCluster(EmbeddedZooKeeper zooKeeper, EmbeddedBroker broker) {
    this.zooKeeper = zooKeeper;
    this.broker = broker;
  }

  /**
   * Starts both servers; on failure, whatever was started is stopped again.
   *
   * @param dataDir keeps {@code kafka/} and {@code zookeeper/} there across runs; null for
   *     temporary directories removed on close
   */
  public static DevCluster start(HostPort kafkaListen, HostPort zooKeeperListen, Path dataDir) {
    EmbeddedZooKeeper zk = EmbeddedZooKeeper.start(zooKeeperListen, dataDir);
    try {
      return new DevCluster(zk, EmbeddedBroker.start(kafkaListen, dataDir));
    } catch (RuntimeException e) {
      zk.close();
      throw e;
    }
  }

  public EmbeddedBroker broker() {
    return broker;
  }

  public EmbeddedZooKeeper zooKeeper() {
    return zooKeeper;
  }

  @Override
  public void close() {
    try {
      broker.close();
    } finally {
      zooKeeper.close();
    }
  }
}
