package io.zcow.cli;

import io.zcow.cli.embedded.DevCluster;
import io.zcow.cli.embedded.EmbeddedBroker;
import io.zcow.cli.embedded.EmbeddedZooKeeper;
import io.zcow.cli.embedded.HostPort;
import java.io.Closeable;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code zcow dev-cluster}: a Kafka broker and a ZooKeeper server in this process, until stopped. */
@Command(
    name = "dev-cluster",
    mixinStandardHelpOptions = true,
    description = {
      "Runs a cluster of one in this process: a Kafka broker (KRaft, broker and controller at once) and a ZooKeeper server, for trying zcow's roles on one host or in tests. Prints the two addresses, one line each ('kafka: HOST:PORT', 'zookeeper: HOST:PORT'), and runs until SIGTERM or Ctrl-C, then stops both cleanly.",
      "",
      "Listens on loopback unless told otherwise: other hosts can join only with --listen on a reachable address. The roles run against it need a key (--auth-key-file, the same file for all: head -c 32 /dev/urandom > FILE) or --insecure.",
      "",
      "With --only, runs one of the two servers (and prints only its line), so that each can be stopped and restarted on its own: restarted with the same --listen (or --zookeeper-listen) and --data-dir, it keeps its data and its clients reconnect.",
      ""
    },
    sortOptions = false)
final class DevClusterCommand implements Callable<Integer> {
  /** How long a shutdown hook waits for the servers to stop before the JVM exits anyway. */
  private static final long STOP_WAIT_SECONDS = 60;

  @Option(names = "--listen", paramLabel = "HOST:PORT", converter = HostPortConverter.class,
      description = "Kafka client listener (default: 127.0.0.1 on a free port).")
  HostPort listen = HostPort.loopbackAnyPort();

  @Option(names = "--zookeeper-listen", paramLabel = "HOST:PORT", converter = HostPortConverter.class,
      description = "ZooKeeper client address (default: 127.0.0.1 on a free port).")
  HostPort zooKeeperListen = HostPort.loopbackAnyPort();

  @Option(names = "--data-dir", paramLabel = "DIR",
      description = "Keep the broker's and ZooKeeper's data in DIR/kafka and DIR/zookeeper, reused by the next run (default: temporary directories, removed on exit).")
  Path dataDir;

  /** Which servers to run. */
  enum Only { kafka, zookeeper }

  @Option(names = "--only", paramLabel = "SERVER",
      description = "Run only this server: kafka or zookeeper (default: both).")
  Only only;

  @Option(names = "--node-id", paramLabel = "N",
      description = "With --only kafka and --quorum-voters: this node's id, one of the voters (default: 1).")
  int nodeId = 1;

  @Option(names = "--quorum-voters", paramLabel = "ID@HOST:PORT,...",
      description = "With --only kafka: run one node of a cluster of several, every node broker and controller; lists every node's controller address (this node's controller listens on its own). Internal topics then get 3 replicas (or as many as there are nodes). Start the nodes together: a node serves once a majority runs.")
  String quorumVoters;

  @Option(names = "--cluster-id", paramLabel = "ID",
      description = "With --quorum-voters: the cluster's id, the same on every node (a Kafka cluster id, e.g. from kafka-storage.sh random-uuid); used when this node's storage is formatted.")
  String clusterId;

  @Option(names = "--extra-listener", paramLabel = "HOST:PORT@ADVERTISED_HOST:PORT",
      description = "With --only kafka: one more client listener on HOST:PORT that tells its clients to connect to ADVERTISED_HOST:PORT (a proxy or NAT in front of the broker); repeatable.")
  java.util.List<String> extraListeners = new java.util.ArrayList<>();

  /** The extra listeners as values; bad values are bad usage. */
  java.util.List<EmbeddedBroker.ExtraListener> extraListeners() {
    if (!extraListeners.isEmpty() && only != Only.kafka) {
      throw new io.zcow.BadInputException("--extra-listener needs --only kafka");
    }
    try {
      return extraListeners.stream().map(EmbeddedBroker.ExtraListener::parse).toList();
    } catch (IllegalArgumentException e) {
      throw new io.zcow.BadInputException("--extra-listener: " + e.getMessage());
    }
  }

  /** The quorum options as a value; null for a cluster of one. Bad values are bad usage. */
  EmbeddedBroker.Quorum quorum() {
    if (quorumVoters == null) {
      if (clusterId != null || nodeId != 1) {
        throw new io.zcow.BadInputException("--node-id and --cluster-id need --quorum-voters");
      }
      return null;
    }
    if (only != Only.kafka) {
      throw new io.zcow.BadInputException("--quorum-voters needs --only kafka");
    }
    try {
      return new EmbeddedBroker.Quorum(nodeId, EmbeddedBroker.Quorum.parseVoters(quorumVoters), clusterId);
    } catch (IllegalArgumentException e) {
      throw new io.zcow.BadInputException("--quorum-voters/--node-id/--cluster-id: "
          + e.getMessage());
    }
  }

  @Override
  public Integer call() throws InterruptedException {
    CountDownLatch stop = new CountDownLatch(1);
    CountDownLatch stopped = new CountDownLatch(1);
    Thread hook = new Thread(() -> {
      stop.countDown();
      try {
        stopped.await(STOP_WAIT_SECONDS, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }, "zcow-dev-cluster-stop");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      return serve(System.out, System.err, stop);
    } finally {
      stopped.countDown();
    }
  }

  /**
   * Starts the cluster, prints its addresses on {@code out}, and stops it once {@code stop} is
   * released (by the shutdown hook, or by a test).
   */
  int serve(PrintStream out, PrintStream err, CountDownLatch stop) throws InterruptedException {
    long started = System.nanoTime();
    EmbeddedBroker.Quorum quorum = quorum();
    java.util.List<EmbeddedBroker.ExtraListener> extra = extraListeners();
    if (only != null) {
      return serveOne(out, err, stop, started, quorum, extra);
    }
    try (DevCluster cluster = DevCluster.start(listen, zooKeeperListen, dataDir)) {
      out.println("kafka: " + cluster.broker().bootstrapServers());
      out.println("zookeeper: " + cluster.zooKeeper().connectString());
      out.flush();
      err.printf(Locale.ROOT, "dev-cluster: up in %.1f s (data in %s and %s); SIGTERM or Ctrl-C stops it%n",
          (System.nanoTime() - started) / 1e9, cluster.broker().dataDir(), cluster.zooKeeper().dataDir());
      err.flush();
      stop.await();
      err.println("dev-cluster: stopping");
      err.flush();
    }
    return Main.EXIT_OK;
  }

  private int serveOne(PrintStream out, PrintStream err, CountDownLatch stop, long started,
      EmbeddedBroker.Quorum quorum, java.util.List<EmbeddedBroker.ExtraListener> extra) throws InterruptedException {
    try (Closeable server = only == Only.kafka ? EmbeddedBroker.start(listen, dataDir, quorum, extra)
        : EmbeddedZooKeeper.start(zooKeeperListen, dataDir)) {
      String address = server instanceof EmbeddedBroker b ? b.bootstrapServers()
          : ((EmbeddedZooKeeper) server).connectString();
      Path data = server instanceof EmbeddedBroker b ? b.dataDir() : ((EmbeddedZooKeeper) server).dataDir();
      out.println(only + ": " + address);
      out.flush();
      err.printf(Locale.ROOT, "dev-cluster: %s up in %.1f s (data in %s); SIGTERM or Ctrl-C stops it%n",
          only, (System.nanoTime() - started) / 1e9, data);
      err.flush();
      stop.await();
      err.println("dev-cluster: stopping");
      err.flush();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return Main.EXIT_OK;
  }

  /** Parses HOST:PORT options; a malformed value is bad usage (exit 2). */
  static final class HostPortConverter implements CommandLine.ITypeConverter<HostPort> {
    @Override
    public HostPort convert(String value) {
      try {
        return HostPort.parse(value);
      } catch (RuntimeException e) {
        throw new CommandLine.TypeConversionException(e.getMessage());
      }
    }
  }
}
