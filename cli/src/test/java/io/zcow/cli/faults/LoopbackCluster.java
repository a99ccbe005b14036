package io.zcow.cli.faults;

import static org.junit.jupiter.api.Assertions.fail;

import io.zcow.proto.Topics;
import io.zcow.testkit.TcpProxy;
import io.zcow.writer.WriterConfig;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A zcow cluster on loopback in which every role is a process of its own, as deployed: a Kafka
 * broker and a ZooKeeper server ({@code zcow dev-cluster --only kafka|zookeeper}, each on a fixed
 * port with its data kept, so either can be restarted alone and clients reconnect), writers sharing
 * one target root, workers, and coordinators ({@code zcow backup --kafka ...}). The JVMs run
 * {@code io.zcow.cli.Main} from the test class path, so they run the code under test.
 *
 * <p>Usage:
 * <pre>{@code
 * try (LoopbackCluster c = LoopbackCluster.start(dir)) {
 *   Role writer = c.startWriter("writer-1");
 *   Role worker = c.startWorker("worker-1", "--max-read-rate", "1");
 *   Role backup = c.startBackup("backup", c.backupArgs(source, "image.qcow2", "job-1"));
 *   c.events().awaitRangeDone("job-1", Duration.ofSeconds(60));
 *   worker.kill();
 *   ...
 * }
 * }</pre>
 *
 * <p>Logs: {@code dir/logs/NAME[.N].out|err}. {@link #close()} kills every process it started.
 * Not thread safe: one test thread drives it.
 */
public final class LoopbackCluster implements AutoCloseable {
  private static final Pattern KAFKA = Pattern.compile("(?m)^kafka: (\\S+:\\d+)$");
  private static final Pattern ZOOKEEPER = Pattern.compile("(?m)^zookeeper: (\\S+:\\d+)$");
  private static final Duration SERVER_START = Duration.ofSeconds(120);

  private final Path dir;
  private final Path logs;
  private final Path targetRoot;
  private final List<Role> all = new CopyOnWriteArrayList<>();
  private final Map<String, Integer> starts = new ConcurrentHashMap<>();
  private final List<Role> kafkaServers = new CopyOnWriteArrayList<>();
  /** Proxies in front of the broker's extra listeners, one per client to partition alone. */
  private final List<TcpProxy> kafkaProxies = new CopyOnWriteArrayList<>();
  private final List<TcpProxy> zooKeeperProxies = new CopyOnWriteArrayList<>();
  private int proxiedClients;
  private Role zooKeeperServer;
  private String kafka;
  private String zookeeper;
  private JobEvents events;

  private final Thread reaper = new Thread(this::close, "loopback-cluster-reaper");

  private LoopbackCluster(Path dir) throws IOException {
    // A test JVM that is killed (SIGTERM) or exits early takes its cluster with it.
    Runtime.getRuntime().addShutdownHook(reaper);
    this.dir = dir;
    this.logs = Files.createDirectories(dir.resolve("logs"));
    this.targetRoot = Files.createDirectories(dir.resolve("images"));
  }

  /**
   * Starts ZooKeeper and the Kafka broker as two processes (data under {@code dir/data}) and a
   * follower of {@code zcow.events}; returns once both serve.
   */
  public static LoopbackCluster start(Path dir) throws IOException {
    return start(dir, 1);
  }

  /**
   * As {@link #start(Path)} with {@code brokers} Kafka nodes, each a process of its own (broker and
   * controller at once, {@code dev-cluster --only kafka --node-id N --quorum-voters ...}, data
   * under {@code dir/data/kafka-N}) on fixed loopback ports, so each can be restarted alone.
   */
  public static LoopbackCluster start(Path dir, int brokers) throws IOException {
    return start(dir, brokers, 0);
  }

  /**
   * As {@link #start(Path)} (one broker), with {@code kafkaProxies} {@link TcpProxy proxies} in
   * front of it ({@link #kafkaProxy(int)}): the broker gets an extra listener per proxy that
   * advertises the proxy's port, so a client bootstrapped at a proxy keeps going through it and
   * a {@link TcpProxy#cut} really cuts that client (and only it) off the broker.
   */
  public static LoopbackCluster startWithKafkaProxies(Path dir, int kafkaProxies) throws IOException {
    return start(dir, 1, kafkaProxies);
  }

  /**
   * As {@link #start(Path, int)} with {@code clients} proxied Kafka clients: for client {@code j}
   * every broker gets an extra listener {@code EXTRA(j+1)} that advertises a {@link TcpProxy} of
   * that client's in front of it, so the client, bootstrapped at {@link #kafkaVia(int)}, reaches
   * every broker through its own proxies and {@link #cutKafka(int)} cuts it (and only it) off
   * the whole cluster.
   */
  public static LoopbackCluster startWithKafkaClients(Path dir, int brokers, int clients) throws IOException {
    return start(dir, brokers, clients);
  }

  private static LoopbackCluster start(Path dir, int brokers, int proxies) throws IOException {
    LoopbackCluster c = new LoopbackCluster(dir);
    try {
      Path data = Files.createDirectories(dir.resolve("data"));
      c.zooKeeperServer = c.startRole("zookeeper", List.of("dev-cluster", "--only", "zookeeper", "--data-dir",
          data.toString()), "-Xmx128m");
      if (brokers == 1) {
        List<String> args = new ArrayList<>(List.of("dev-cluster", "--only", "kafka", "--data-dir", data.toString()));
        for (int port : freePorts(proxies)) {
          TcpProxy proxy = TcpProxy.start("127.0.0.1", port);
          c.kafkaProxies.add(proxy);
          args.addAll(List.of("--extra-listener", "127.0.0.1:" + port + "@" + proxy.address()));
        }
        c.kafkaServers.add(c.startRole("kafka", args, "-Xmx640m"));
      } else {
        // One draw for every port (client, controller, each proxied client's extra listener and its
        // proxy), all held at once, so no two are the same.
        int[] ports = freePorts(2 * brokers + 2 * brokers * proxies);
        int[] client = Arrays.copyOfRange(ports, 0, brokers);
        int[] controller = Arrays.copyOfRange(ports, brokers, 2 * brokers);
        StringBuilder voters = new StringBuilder();
        for (int i = 0; i < brokers; i++) {
          voters.append(i == 0 ? "" : ",").append(i + 1).append("@127.0.0.1:").append(controller[i]);
        }
        String clusterId = org.apache.kafka.common.Uuid.randomUuid().toString();
        int[] extra = Arrays.copyOfRange(ports, 2 * brokers, 2 * brokers + brokers * proxies);
        for (int i = 0; i < brokers * proxies; i++) { // client i / brokers, broker i % brokers
          c.kafkaProxies.add(TcpProxy.start(ports[2 * brokers + brokers * proxies + i], "127.0.0.1", extra[i]));
        }
        c.proxiedClients = proxies;
        for (int i = 0; i < brokers; i++) {
          Path nodeData = Files.createDirectories(data.resolve("kafka-" + (i + 1)));
          List<String> args = new ArrayList<>(List.of("dev-cluster", "--only", "kafka", "--data-dir",
              nodeData.toString(), "--listen", "127.0.0.1:" + client[i], "--node-id", Integer.toString(i + 1),
              "--quorum-voters", voters.toString(), "--cluster-id", clusterId));
          for (int j = 0; j < proxies; j++) {
            int k = j * brokers + i;
            args.addAll(List.of("--extra-listener", "127.0.0.1:" + extra[k] + "@" + c.kafkaProxies.get(k).address()));
          }
          c.kafkaServers.add(c.startRole("kafka-" + (i + 1), args, "-Xmx512m"));
        }
      }
      c.zookeeper = group(ZOOKEEPER, c.zooKeeperServer.awaitStdout(s -> ZOOKEEPER.matcher(s).find(), SERVER_START));
      List<String> addresses = new ArrayList<>();
      for (Role k : c.kafkaServers) {
        addresses.add(group(KAFKA, k.awaitStdout(s -> KAFKA.matcher(s).find(), SERVER_START)));
      }
      c.kafka = String.join(",", addresses);
      c.events = new JobEvents(c.kafka, Topics.chunks(WriterConfig.DEFAULT_GROUP));
      return c;
    } catch (RuntimeException | Error e) {
      c.close();
      throw e;
    }
  }

  private static int[] freePorts(int n) throws IOException {
    java.net.ServerSocket[] sockets = new java.net.ServerSocket[n];
    int[] ports = new int[n];
    try {
      for (int i = 0; i < n; i++) {
        sockets[i] = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress());
        ports[i] = sockets[i].getLocalPort();
      }
    } finally {
      for (java.net.ServerSocket s : sockets) {
        if (s != null) {
          s.close();
        }
      }
    }
    return ports;
  }

  /**
   * Kafka bootstrap addresses ({@code 127.0.0.1:PORT}, comma-separated when there are several
   * brokers); stay the same across broker restarts.
   */
  public String kafka() {
    return kafka;
  }

  /** The {@code i}th proxy in front of the broker (see {@link #startWithKafkaProxies}); its address bootstraps. */
  public TcpProxy kafkaProxy(int i) {
    return kafkaProxies.get(i);
  }

  /**
   * Bootstrap addresses of proxied client {@code j} of a cluster started by {@link
   * #startWithKafkaClients}: its proxies, one in front of each broker.
   */
  public String kafkaVia(int j) {
    return String.join(",", clientProxies(j).stream().map(TcpProxy::address).toList());
  }

  /** Cuts proxied client {@code j} off every broker ({@link TcpProxy#cut}); {@link #healKafka} ends it. */
  public void cutKafka(int j, TcpProxy.Mode mode) {
    clientProxies(j).forEach(p -> p.cut(mode));
  }

  public void healKafka(int j) {
    clientProxies(j).forEach(TcpProxy::heal);
  }

  private List<TcpProxy> clientProxies(int j) {
    if (j < 0 || j >= proxiedClients) {
      throw new IllegalArgumentException("client must be 0.." + (proxiedClients - 1) + ": " + j);
    }
    int brokers = kafkaServers.size();
    return kafkaProxies.subList(j * brokers, (j + 1) * brokers);
  }

  /** A new proxy in front of ZooKeeper, closed with the cluster; its address is a connect string. */
  public TcpProxy zooKeeperProxy() {
    int colon = zookeeper.lastIndexOf(':');
    TcpProxy p = TcpProxy.start(zookeeper.substring(0, colon), Integer.parseInt(zookeeper.substring(colon + 1)));
    zooKeeperProxies.add(p);
    return p;
  }

  /** ZooKeeper connect string; stays the same across restarts. */
  public String zookeeper() {
    return zookeeper;
  }

  /** The writers' shared {@code --target-root}. */
  public Path targetRoot() {
    return targetRoot;
  }

  public Path dir() {
    return dir;
  }

  /** The process of the (first) broker (the current one: restart returns and remembers the new one). */
  public Role kafkaServer() {
    return kafkaServers.get(0);
  }

  /** The processes of every broker, current ones, in node id order. */
  public List<Role> kafkaServers() {
    return List.copyOf(kafkaServers);
  }

  public Role zooKeeperServer() {
    return zooKeeperServer;
  }

  /** Everything the writers report on {@code zcow.events}, as it arrives. */
  public JobEvents events() {
    return events;
  }

  /**
   * A writer: {@code --target-root} shared, 1 s checkpoints, a 32 MiB cache unless {@code extra}
   * names {@code --cache-size}; {@code extra} arguments are appended (e.g. {@code --zookeeper-session-timeout 4s}, {@code --range-timeout 20s}).
   */
  public Role startWriter(String name, String... extra) {
    return startWriterVia(name, kafka, zookeeper, extra);
  }

  /** As {@link #startWriter}, reaching Kafka and ZooKeeper at the given addresses (proxies). */
  public Role startWriterVia(String name, String kafkaAddress, String zooKeeperAddress, String... extra) {
    List<String> args = new ArrayList<>(List.of("writer", "--kafka", kafkaAddress, "--zookeeper", zooKeeperAddress,
        "--target-root", targetRoot.toString(), "--checkpoint-interval", "1s"));
    if (!Arrays.asList(extra).contains("--cache-size")) {
      args.addAll(List.of("--cache-size", "32m"));
    }
    args.addAll(Arrays.asList(extra));
    return startRole(name, args, "-Xmx384m");
  }

  /** A worker with one thread; {@code extra} appended (e.g. {@code --max-read-rate 1}). */
  public Role startWorker(String name, String... extra) {
    return startWorkerVia(name, kafka, extra);
  }

  /** As {@link #startWorker}, reaching Kafka at {@code kafkaAddress} (e.g. {@link #kafkaVia(int)}). */
  public Role startWorkerVia(String name, String kafkaAddress, String... extra) {
    List<String> args = new ArrayList<>(List.of("worker", "--kafka", kafkaAddress, "--threads", "1", "--source-allow",
        "/"));
    args.addAll(Arrays.asList(extra));
    return startRole(name, args, "-Xmx256m");
  }

  /** A coordinator: {@code zcow ARGS} (see {@link #backupArgs}). */
  public Role startBackup(String name, List<String> args) {
    return startRole(name, args, "-Xmx256m");
  }

  /**
   * {@code backup --kafka --zookeeper --job-id JOB --range-size 4m --progress plain
   * --connect-timeout 60 [extra] SOURCE TARGET}; a mutable list.
   */
  public List<String> backupArgs(Path source, String target, String jobId, String... extra) {
    List<String> args = new ArrayList<>(List.of("backup", "--kafka", kafka, "--zookeeper", zookeeper,
        "--job-id", jobId, "--range-size", "4m", "--progress", "plain", "--connect-timeout", "60"));
    args.addAll(Arrays.asList(extra));
    args.add(source.toString());
    args.add(target);
    return args;
  }

  /**
   * Starts {@code role} again with the same arguments, after killing it (SIGKILL) if it still
   * runs. The broker and ZooKeeper come back on the same port with the same data, and this
   * returns once they serve.
   */
  public Role restart(Role role) {
    return restart(role, role.args());
  }

  /** As {@link #restart(Role)}, with other arguments (e.g. another key file). */
  public Role restart(Role role, List<String> arguments) {
    if (role.isAlive()) {
      role.kill();
    }
    List<String> args = new ArrayList<>(arguments);
    int broker = kafkaServers.indexOf(role);
    boolean kafkaRole = broker >= 0;
    boolean zkRole = role == zooKeeperServer;
    if (kafkaRole && !args.contains("--listen")) {
      args.addAll(List.of("--listen", kafka));
    } else if (zkRole && !args.contains("--zookeeper-listen")) {
      args.addAll(List.of("--zookeeper-listen", zookeeper));
    }
    String heap = kafkaRole ? (kafkaServers.size() == 1 ? "-Xmx640m" : "-Xmx512m") : zkRole ? "-Xmx128m" : role.name().startsWith("writer") ? "-Xmx384m"
        : "-Xmx256m";
    Role again = startRole(role.name(), args, heap);
    if (kafkaRole) {
      kafkaServers.set(broker, again);
      again.awaitStdout(s -> KAFKA.matcher(s).find(), SERVER_START);
    } else if (zkRole) {
      zooKeeperServer = again;
      again.awaitStdout(s -> ZOOKEEPER.matcher(s).find(), SERVER_START);
    }
    return again;
  }

  /** Every role started so far (dead ones included), in start order. */
  public List<Role> roles() {
    return List.copyOf(all);
  }

  /** The output of every writer, worker and server (not coordinators), for failure messages. */
  public String logsOfRoles() {
    StringBuilder b = new StringBuilder();
    for (Role r : all) {
      if (r.name().startsWith("writer") || r.name().startsWith("worker")) {
        b.append(r.describe());
      }
    }
    return b.toString();
  }

  private Role startRole(String name, List<String> args, String heap) {
    int n = starts.merge(name, 1, Integer::sum);
    String file = n == 1 ? name : name + "." + n;
    List<String> jvm = new ArrayList<>();
    jvm.add(heap);
    // Many JVMs share two cores: the serial collector and few compiler threads keep them light,
    // and C1 only, as the zcow launcher runs (a broker restarts sooner; less CPU in all).
    jvm.add("-XX:+UseSerialGC");
    jvm.add("-XX:CICompilerCount=2");
    jvm.add("-XX:TieredStopAtLevel=1");
    // zcow's own INFO lines (leadership, recovery, lock waits) are what scenarios wait for.
    jvm.add("-Dorg.slf4j.simpleLogger.log.io.zcow=info");
    jvm.add("-cp");
    jvm.add(System.getProperty("java.class.path"));
    jvm.add("io.zcow.cli.Main");
    jvm.addAll(io.zcow.cli.ClusterKeys.secured(args)); // every role signs with the test clusters' key
    // Everything in an argument file: the command line is short and names no role, so nothing
    // that matches processes by name (pkill -f dev-cluster on a shared host) reaches this cluster.
    Path argFile = logs.resolve(file + ".args");
    StringBuilder b = new StringBuilder();
    for (String a : jvm) {
      b.append('"').append(a.replace("\\", "\\\\").replace("\"", "\\\"")).append("\"\n");
    }
    try {
      Files.writeString(argFile, b.toString());
    } catch (IOException e) {
      fail("cannot write " + argFile + ": " + e);
    }
    List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "@" + argFile);
    Path out = logs.resolve(file + ".out");
    Path err = logs.resolve(file + ".err");
    try {
      Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile())
          .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
      Role role = new Role(name, args, p, out, err, this::logsOfRoles);
      all.add(role);
      return role;
    } catch (IOException e) {
      fail("cannot start " + name + ": " + e);
      return null;
    }
  }

  private static String group(Pattern p, String s) {
    Matcher m = p.matcher(s);
    if (!m.find()) {
      fail("no " + p + " in " + s);
    }
    return m.group(1);
  }

  /** Kills every process started (stopped ones are continued first so they die at once). */
  @Override
  public void close() {
    if (Thread.currentThread() != reaper) {
      try {
        Runtime.getRuntime().removeShutdownHook(reaper);
      } catch (IllegalStateException shuttingDown) {
        // the hook runs (or ran) anyway
      }
    }
    if (events != null) {
      events.close();
    }
    kafkaProxies.forEach(TcpProxy::close);
    zooKeeperProxies.forEach(TcpProxy::close);
    for (Role r : all) {
      if (r.isAlive()) {
        r.process().destroyForcibly();
      }
    }
    for (Role r : all) {
      if (r.isAlive()) {
        r.kill();
      }
    }
  }
}
