package io.zcow.cli.embedded;

import java.io.Closeable;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.metadata.storage.Formatter;
import org.apache.kafka.server.common.MetadataVersion;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Kafka broker in this process: one KRaft node that is broker and controller at once, a real
 * cluster of one that other hosts can join as clients when it listens on a reachable address.
 *
 * <p>Built directly on {@link KafkaRaftServer} with storage formatted by Kafka's
 * {@link Formatter}, as {@code kafka-storage.sh format} and {@code kafka-server-start.sh} do,
 * rather than on kafka-test-common-runtime's cluster kit: the kit binds every listener to
 * localhost on a random port, keeps its data in temporary directories and brings JUnit onto the
 * runtime class path, while here the listener and the data directory are the operator's choice.
 *
 * <p>The client listener (PLAINTEXT) is the given address; the controller listener is on loopback
 * on a free port, since nothing outside this process talks to it. Metadata version and feature
 * levels are the latest production ones, so share groups ({@code share.version=1}) work.
 *
 * <p>Not thread safe as to {@link #close()}; close is idempotent. After close no Kafka thread is
 * left running, and a temporary data directory is removed.
 */
public final class EmbeddedBroker implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(EmbeddedBroker.class);

  /**
   * The broker's record limit: a chunk batch of about 1 MiB plus a raw 2 MiB cluster, with
   * framing, must fit, with room to spare for topics configured larger than the default.
   */
  public static final int MAX_MESSAGE_BYTES = 8 << 20;

  private static final int NODE_ID = 1;

  /**
   * This node's place in a cluster of several (each node a process with its own data directory,
   * every node broker and controller at once, a static controller quorum).
   *
   * @param nodeId this node's id; must be one of {@code voters}
   * @param voters every controller: node id to controller listener address
   * @param clusterId the cluster's id, the same on every node (formats empty storage with it)
   */
  public record Quorum(int nodeId, Map<Integer, HostPort> voters, String clusterId) {
    public Quorum {
      voters = Map.copyOf(voters);
      if (!voters.containsKey(nodeId)) {
        throw new IllegalArgumentException("nodeId " + nodeId + " is not one of the voters " + voters.keySet());
      }
      for (HostPort h : voters.values()) {
        if (h.port() == 0) {
          throw new IllegalArgumentException("voters need fixed controller ports: " + voters);
        }
      }
      if (clusterId == null || clusterId.isBlank()) {
        throw new IllegalArgumentException("clusterId must be given for a cluster of several nodes");
      }
    }

    /** Parses {@code ID@HOST:PORT,...} (Kafka's {@code controller.quorum.voters}). */
    public static Map<Integer, HostPort> parseVoters(String text) {
      Map<Integer, HostPort> voters = new java.util.TreeMap<>();
      for (String v : text.split(",")) {
        int at = v.indexOf('@');
        if (at <= 0) {
          throw new IllegalArgumentException("a voter is ID@HOST:PORT: " + v);
        }
        int id;
        try {
          id = Integer.parseInt(v.substring(0, at).trim());
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException("a voter's id is a number: " + v);
        }
        if (voters.put(id, HostPort.parse(v.substring(at + 1).trim())) != null) {
          throw new IllegalArgumentException("voter id " + id + " given twice: " + text);
        }
      }
      return voters;
    }

    /** Replicas of internal topics: 3, or the number of nodes if fewer. */
    int replication() {
      return Math.min(3, voters.size());
    }

    String votersConfig() {
      StringBuilder b = new StringBuilder();
      new java.util.TreeMap<>(voters).forEach((id, h) -> b.append(b.length() == 0 ? "" : ",").append(id).append('@')
          .append(h));
      return b.toString();
    }
  }
  /**
   * One more client listener: the broker listens on {@code listen} and tells the clients that
   * connected there to use {@code advertised} (a proxy in front of it, a NAT address). Kafka
   * answers metadata with the addresses of the listener a request came in on, so clients that
   * bootstrap at {@code advertised} keep going through it.
   */
  public record ExtraListener(HostPort listen, HostPort advertised) {
    public ExtraListener {
      if (listen.port() == 0 || advertised.port() == 0) {
        throw new IllegalArgumentException("an extra listener needs fixed ports: " + listen + "@" + advertised);
      }
    }

    /** Parses {@code HOST:PORT@ADVERTISED_HOST:PORT}. */
    public static ExtraListener parse(String text) {
      int at = text.indexOf('@');
      if (at <= 0) {
        throw new IllegalArgumentException("an extra listener is HOST:PORT@ADVERTISED_HOST:PORT: " + text);
      }
      return new ExtraListener(HostPort.parse(text.substring(0, at).trim()), HostPort.parse(text.substring(at + 1).trim()));
    }
  }

  private static final String CLIENT_LISTENER = "PLAINTEXT";
  private static final String CONTROLLER_LISTENER = "CONTROLLER";
  private static final Duration READY_TIMEOUT = Duration.ofSeconds(60);

  private final KafkaRaftServer server;
  private final HostPort advertised;
  private final Path dataDir;
  private final boolean deleteOnClose;
  private final Duration startupTime;
  private final AtomicBoolean closed = new AtomicBoolean();

  private EmbeddedBroker(KafkaRaftServer server, HostPort advertised, Path dataDir,
      boolean deleteOnClose, Duration startupTime) {
    this.server = server;
    this.advertised = advertised;
    this.dataDir = dataDir;
    this.deleteOnClose = deleteOnClose;
    this.startupTime = startupTime;
  }

  /**
   * Formats storage if needed and starts the broker; returns once it accepts clients.
   *
   * @param listen the client listener; port 0 picks a free port
   * @param dataParent where the broker keeps its logs ({@code dataParent/kafka}, kept on close and
   *     reused by the next start); null for a temporary directory removed on close
   * @throws IllegalStateException when the broker cannot start (the port is taken, the data
   *     directory belongs to another cluster...), with Kafka's error as cause
   */
  public static EmbeddedBroker start(HostPort listen, Path dataParent) {
    return start(listen, dataParent, null);
  }

  /**
   * As {@link #start(HostPort, Path)}, as one node of a cluster of several when {@code quorum} is
   * not null: its controller listener is its voter address, internal topics get 3 replicas (or
   * as many as there are nodes) and {@code min.insync.replicas} 2 from 3 replicas. Returns once
   * this node serves clients, which needs a majority of the voters running.
   */
  public static EmbeddedBroker start(HostPort listen, Path dataParent, Quorum quorum) {
    return start(listen, dataParent, quorum, List.of());
  }

  /**
   * As {@link #start(HostPort, Path, Quorum)}, with {@code extra} client listeners ({@code
   * EXTRA1}, {@code EXTRA2}... in order; plain text like the main one).
   */
  public static EmbeddedBroker start(HostPort listen, Path dataParent, Quorum quorum, List<ExtraListener> extra) {
    long started = System.nanoTime();
    HostPort client = listen.resolvePort();
    HostPort controller = quorum == null ? HostPort.loopbackAnyPort().resolvePort() : quorum.voters().get(quorum.nodeId());
    Path dataDir = Dirs.dataDir(dataParent, "kafka");
    boolean temporary = dataParent == null;
    KafkaRaftServer server = null;
    try {
      format(dataDir, quorum);
      KafkaConfig config = new KafkaConfig(brokerConfig(client, controller, dataDir, quorum, extra), false);
      server = new KafkaRaftServer(config, Time.SYSTEM);
      server.startup();
      HostPort advertised = client.advertised();
      awaitReady(advertised);
      Duration took = Duration.ofNanos(System.nanoTime() - started);
      LOG.info("embedded Kafka broker up at {} in {} ms (data in {})", advertised, took.toMillis(), dataDir);
      return new EmbeddedBroker(server, advertised, dataDir, temporary, took);
    } catch (RuntimeException e) {
      stopQuietly(server);
      if (temporary) {
        Dirs.deleteQuietly(dataDir);
      }
      throw new IllegalStateException("the embedded Kafka broker could not start on " + client
          + ": " + rootMessage(e), e);
    }
  }

  /**
   * Settings that differ from Kafka's defaults, each for a reason. Public so tests and the
   * operations guide can show what the embedded broker runs with.
   */
  public static Map<String, String> tuning() {
    Map<String, String> config = new LinkedHashMap<>();
    // A cluster of one: every internal topic has one replica, and few partitions, so the first
    // consumer group or share group does not wait for 50 partitions to be created.
    config.put("offsets.topic.replication.factor", "1");
    config.put("offsets.topic.num.partitions", "1");
    config.put("transaction.state.log.replication.factor", "1");
    config.put("transaction.state.log.min.isr", "1");
    config.put("transaction.state.log.num.partitions", "1");
    config.put("share.coordinator.state.topic.replication.factor", "1");
    config.put("share.coordinator.state.topic.min.isr", "1");
    config.put("share.coordinator.state.topic.num.partitions", "1");
    config.put("min.insync.replicas", "1");
    // Chunk batches carrying raw 2 MiB clusters must fit, framing included.
    config.put("message.max.bytes", Integer.toString(MAX_MESSAGE_BYTES));
    config.put("replica.fetch.max.bytes", Integer.toString(MAX_MESSAGE_BYTES));
    // Classic groups otherwise wait 3 s for more members before the first assignment.
    config.put("group.initial.rebalance.delay.ms", "0");
    // zcow creates its topics; an auto-created topic would hide a missing creation.
    config.put("auto.create.topics.enable", "false");
    // The cleaner only compacts zcow.jobs (small records); its default 128 MiB dedupe buffer
    // would be most of a small heap.
    config.put("log.cleaner.dedupe.buffer.size", Integer.toString(8 << 20));
    // OS autotuning of socket buffers moved 1 MiB records faster here (DESIGN.md).
    config.put("socket.send.buffer.bytes", "-1");
    config.put("socket.receive.buffer.bytes", "-1");
    // A share consumer gets its first assignment on a heartbeat: at the default 5 s interval the
    // first task of a job waited about 6 s and the second worker thread joined a range late.
    config.put("group.share.min.heartbeat.interval.ms", "200");
    config.put("group.share.heartbeat.interval.ms", "500");
    config.put("group.share.initialize.retry.interval.ms", "200");
    // Restarted after a crash (kill -9, a power cut under --state-dir), the node's controller
    // keeps the dead incarnation registered until its session times out, and only then lets the
    // new one serve: 11 s at the default 9 s session, 5 s at 4 s (heartbeats every second; a
    // stall of 4 s on a loaded host fences the node until its next heartbeat, which clients ride out).
    config.put("broker.session.timeout.ms", "4000");
    config.put("broker.heartbeat.interval.ms", "1000");
    return config;
  }

  private static Map<String, String> brokerConfig(HostPort client, HostPort controller, Path dataDir, Quorum quorum,
      List<ExtraListener> extra) {
    Map<String, String> config = new LinkedHashMap<>(tuning());
    config.put("process.roles", "broker,controller");
    if (quorum == null) {
      config.put("node.id", Integer.toString(NODE_ID));
      config.put("controller.quorum.voters", NODE_ID + "@" + controller);
    } else {
      // Internal topics (group offsets, share-group state, transactions) survive a node's restart.
      String rf = Integer.toString(quorum.replication());
      String minIsr = quorum.replication() >= 3 ? "2" : "1";
      config.put("offsets.topic.replication.factor", rf);
      config.put("transaction.state.log.replication.factor", rf);
      config.put("transaction.state.log.min.isr", minIsr);
      config.put("share.coordinator.state.topic.replication.factor", rf);
      config.put("share.coordinator.state.topic.min.isr", minIsr);
      config.put("min.insync.replicas", minIsr);
      config.put("node.id", Integer.toString(quorum.nodeId()));
      config.put("controller.quorum.voters", quorum.votersConfig());
    }
    StringBuilder listeners = new StringBuilder(CLIENT_LISTENER + "://" + client + "," + CONTROLLER_LISTENER + "://"
        + controller);
    StringBuilder advertised = new StringBuilder(CLIENT_LISTENER + "://" + client.advertised());
    StringBuilder protocols = new StringBuilder(CLIENT_LISTENER + ":PLAINTEXT," + CONTROLLER_LISTENER + ":PLAINTEXT");
    for (int i = 0; i < extra.size(); i++) {
      String name = "EXTRA" + (i + 1);
      listeners.append(',').append(name).append("://").append(extra.get(i).listen());
      advertised.append(',').append(name).append("://").append(extra.get(i).advertised());
      protocols.append(',').append(name).append(":PLAINTEXT");
    }
    config.put("listeners", listeners.toString());
    config.put("advertised.listeners", advertised.toString());
    config.put("listener.security.protocol.map", protocols.toString());
    config.put("inter.broker.listener.name", CLIENT_LISTENER);
    config.put("controller.listener.names", CONTROLLER_LISTENER);
    config.put("log.dirs", dataDir.toString());
    config.put("metadata.log.dir", dataDir.toString());
    return config;
  }

  /** Writes meta.properties and the bootstrap checkpoint unless a previous run already did. */
  private static void format(Path dataDir, Quorum quorum) {
    if (Files.exists(dataDir.resolve("meta.properties"))) {
      return;
    }
    try {
      new Formatter()
          .setPrintStream(new PrintStream(OutputStream.nullOutputStream()))
          .setNodeId(quorum == null ? NODE_ID : quorum.nodeId())
          .setClusterId(quorum == null ? Uuid.randomUuid().toString() : quorum.clusterId())
          .setDirectories(List.of(dataDir.toString()))
          .setMetadataLogDirectory(dataDir.toString())
          .setReleaseVersion(MetadataVersion.latestProduction())
          .setControllerListenerName(CONTROLLER_LISTENER)
          .setIgnoreFormatted(true)
          .run();
    } catch (Exception e) {
      throw new IllegalStateException("cannot format Kafka storage in " + dataDir + ": " + e.getMessage(), e);
    }
  }

  /** startup() returns once the broker is unfenced; a client round trip proves it serves. */
  private static void awaitReady(HostPort advertised) {
    try (Admin admin = Admin.create(Map.of(
        AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, advertised.toString(),
        AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) READY_TIMEOUT.toMillis()))) {
      admin.describeCluster().nodes().get(READY_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for the broker", e);
    } catch (Exception e) {
      throw new IllegalStateException("the broker does not answer clients: " + e, e);
    }
  }

  /** {@code host:port} for {@code bootstrap.servers}. */
  public String bootstrapServers() {
    return advertised.toString();
  }

  /** The client address, as advertised. */
  public HostPort address() {
    return advertised;
  }

  /** Where the broker keeps its logs. */
  public Path dataDir() {
    return dataDir;
  }

  /** From {@link #start} being called to the broker answering a client. */
  public Duration startupTime() {
    return startupTime;
  }

  /** Stops the broker and waits for its threads; removes a temporary data directory. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    stopQuietly(server);
    if (deleteOnClose) {
      Dirs.deleteQuietly(dataDir);
    }
  }

  private static void stopQuietly(KafkaRaftServer server) {
    if (server == null) {
      return;
    }
    try {
      server.shutdown();
      server.awaitShutdown();
    } catch (RuntimeException e) {
      LOG.warn("embedded Kafka broker did not stop cleanly: {}", e.toString());
    }
  }

  /** The message of {@code e}, with its root cause when that is another exception. */
  static String rootMessage(Throwable e) {
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    String top = e.getMessage() != null ? e.getMessage() : e.toString();
    return root == e ? top : top + " (" + root + ")";
  }

  @Override
  public String toString() {
    return "EmbeddedBroker[" + advertised + "]";
  }
}
