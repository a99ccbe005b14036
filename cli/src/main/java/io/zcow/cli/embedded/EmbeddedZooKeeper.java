package io.zcow.cli.embedded;

import java.io.Closeable;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.zookeeper.server.embedded.ExitHandler;
import org.apache.zookeeper.server.embedded.ZooKeeperServerEmbedded;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A standalone ZooKeeper server in this process, for the writers' leader election in the
 * embedded cluster of one ({@link ZooKeeperServerEmbedded}, ZooKeeper 3.9).
 *
 * <p>A fatal server error is logged, never turned into {@code System.exit}. Close is idempotent
 * and removes a temporary data directory.
 */
public final class EmbeddedZooKeeper implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(EmbeddedZooKeeper.class);
  private static final Duration START_TIMEOUT = Duration.ofSeconds(15);

  private final ZooKeeperServerEmbedded server;
  private final HostPort advertised;
  private final Path dataDir;
  private final boolean deleteOnClose;
  private final Duration startupTime;
  private final AtomicBoolean closed = new AtomicBoolean();

  private EmbeddedZooKeeper(ZooKeeperServerEmbedded server, HostPort advertised, Path dataDir,
      boolean deleteOnClose, Duration startupTime) {
    this.server = server;
    this.advertised = advertised;
    this.dataDir = dataDir;
    this.deleteOnClose = deleteOnClose;
    this.startupTime = startupTime;
  }

  /**
   * Starts the server and returns once it serves clients.
   *
   * @param listen the client address; port 0 picks a free port
   * @param dataParent snapshots and logs go to {@code dataParent/zookeeper} (kept); null for a
   *     temporary directory removed on close
   * @throws IllegalStateException when the server cannot start, with ZooKeeper's error as cause
   */
  public static EmbeddedZooKeeper start(HostPort listen, Path dataParent) {
    long started = System.nanoTime();
    HostPort client = listen.resolvePort();
    // A server that fails to bind only logs it and lets start() time out: find out first.
    client.checkBindable();
    Path dataDir = Dirs.dataDir(dataParent, "zookeeper");
    boolean temporary = dataParent == null;
    Properties config = new Properties();
    config.setProperty("clientPort", Integer.toString(client.port()));
    config.setProperty("clientPortAddress", client.host());
    config.setProperty("tickTime", "2000");
    config.setProperty("initLimit", "10");
    config.setProperty("syncLimit", "5");
    // The admin server wants Jetty (not on our class path) and port 8080.
    config.setProperty("admin.enableServer", "false");
    // Keep the data directory from growing without bound on a long-lived dev cluster.
    config.setProperty("autopurge.snapRetainCount", "3");
    config.setProperty("autopurge.purgeInterval", "1");
    ZooKeeperServerEmbedded server = null;
    try {
      server = ZooKeeperServerEmbedded.builder()
          .baseDir(dataDir)
          .configuration(config)
          .exitHandler(ExitHandler.LOG_ONLY)
          .build();
      server.start(START_TIMEOUT.toMillis());
      HostPort advertised = client.advertised();
      Duration took = Duration.ofNanos(System.nanoTime() - started);
      LOG.info("embedded ZooKeeper up at {} in {} ms (data in {})", advertised, took.toMillis(), dataDir);
      return new EmbeddedZooKeeper(server, advertised, dataDir, temporary, took);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      closeQuietly(server);
      cleanUp(dataDir, temporary);
      throw new IllegalStateException("interrupted while starting the embedded ZooKeeper", e);
    } catch (java.util.concurrent.TimeoutException e) {
      closeQuietly(server);
      cleanUp(dataDir, temporary);
      throw new IllegalStateException("the embedded ZooKeeper did not start on " + client + " within "
          + START_TIMEOUT.toSeconds() + " s (its log above says why)", e);
    } catch (Exception e) {
      closeQuietly(server);
      cleanUp(dataDir, temporary);
      throw new IllegalStateException("the embedded ZooKeeper could not start on " + client
          + ": " + EmbeddedBroker.rootMessage(e), e);
    }
  }

  private static void cleanUp(Path dataDir, boolean temporary) {
    if (temporary) {
      Dirs.deleteQuietly(dataDir);
    }
  }

  /** {@code host:port}, the connect string for Curator. */
  public String connectString() {
    return advertised.toString();
  }

  public HostPort address() {
    return advertised;
  }

  public Path dataDir() {
    return dataDir;
  }

  public Duration startupTime() {
    return startupTime;
  }

  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    closeQuietly(server);
    if (deleteOnClose) {
      Dirs.deleteQuietly(dataDir);
    }
  }

  private static void closeQuietly(ZooKeeperServerEmbedded server) {
    if (server != null) {
      try {
        server.close();
      } catch (RuntimeException e) {
        LOG.warn("embedded ZooKeeper did not stop cleanly: {}", e.toString());
      }
    }
  }

  @Override
  public String toString() {
    return "EmbeddedZooKeeper[" + advertised + "]";
  }
}
