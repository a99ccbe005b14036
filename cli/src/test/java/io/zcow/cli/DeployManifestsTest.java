package io.zcow.cli;

import static io.zcow.cli.DeployFiles.at;
import static io.zcow.cli.DeployFiles.list;
import static io.zcow.cli.DeployFiles.map;
import static io.zcow.cli.DeployFiles.maps;
import static io.zcow.cli.DeployFiles.strings;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.zcow.cli.DeployFiles.Doc;
import io.zcow.coordinator.TopicSetup;
import io.zcow.proto.Topics;
import io.zcow.proto.kafka.ChunkLimits;
import io.zcow.writer.WriterConfig;
import io.zcow.writer.WriterMetrics;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * deploy/ against the code: every manifest is the Kubernetes object it claims to be, every zcow
 * command line in it is accepted by the real parser and the roles' command lines are the same
 * in Kubernetes, compose and deploy/local/run.sh, the overlays render with kubectl kustomize
 * (skipped where kubectl is missing), and ports, topics, settings and environment variables agree
 * with the code's constants.
 */
class DeployManifestsTest {
  /** Where every zcow container finds the record-authentication key (the Secret zcow-auth). */
  static final String AUTH_DIR = "/etc/zcow/auth";
  /** The images deploy/images/build.sh builds (testkit's zcow-images.properties, filtered by Maven). */
  static final Properties IMAGES = images();
  static final String ZCOW_IMAGE = IMAGES.getProperty("zcow");
  static final String AUTH_SECRET = "zcow-auth";
  /** Environment variables a zcow container may set: what zcow or the JVM reads. */
  static final Set<String> ZCOW_ENV = Set.of(Main.ENV_LOG_LEVEL, Main.ENV_DEBUG, "JAVA_TOOL_OPTIONS");
  static final Set<String> ROLES = Set.of("writer", "worker", "backup");

  /** A zcow command line found in deploy/: where, and its arguments (without 'java -jar zcow.jar'). */
  record CommandLineAt(String where, String origin, List<String> args) {
    String role() {
      return args.isEmpty() ? "" : args.get(0);
    }

    Set<String> options() {
      Set<String> s = new TreeSet<>();
      for (String a : args) {
        if (a.startsWith("--")) {
          s.add(a.contains("=") ? a.substring(0, a.indexOf('=')) : a);
        }
      }
      return s;
    }

    /** The value after an option, or null. */
    String value(String option) {
      int i = args.indexOf(option);
      return i < 0 || i + 1 >= args.size() ? null : args.get(i + 1);
    }
  }

  // ---- every manifest is the object it claims to be -------------------------------------

  @Test
  void everyManifestIsTheKubernetesObjectItClaimsToBe() {
    List<String> problems = new ArrayList<>();
    int objects = 0;
    for (Doc d : k8sObjects()) {
      objects++;
      for (String p : K8sObjects.problems(d.body())) {
        problems.add(d.where() + ": " + p);
      }
    }
    assertTrue(problems.isEmpty(), String.join("\n", problems));
    assertTrue(objects >= 20, "found only " + objects + " objects under deploy/k8s");
  }

  @Test
  void theCheckRefusesMisspeltFieldsAndWrongTypes() {
    String deployment = """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: x}
        spec:
          selector: {matchLabels: {a: b}}
          template:
            metadata: {labels: {a: b}}
            spec:
              containers:
                - name: c
                  image: zcow
                  %s
        """;
    assertTrue(problems(deployment.formatted("args: [worker]")).isEmpty());
    assertFalse(problems(deployment.formatted("arg: [worker]")).isEmpty(), "misspelt field");
    assertFalse(problems(deployment.formatted("ports: [{containerPort: \"9404\"}]")).isEmpty(), "quoted port");
    assertFalse(problems(deployment.formatted("env: [{name: A, value: 1}]")).isEmpty(), "number for a string");
    assertFalse(problems("""
        apiVersion: kafka.strimzi.io/v1beta2
        kind: KafkaTopic
        metadata: {name: t}
        spec: {partition: 3}
        """).isEmpty(), "misspelt KafkaTopic field");
    assertFalse(problems("""
        apiVersion: keda.sh/v1alpha1
        kind: ScaledObject
        metadata: {name: s}
        spec:
          scaleTargetRef: {name: w}
          triggers: [{type: prometheus, metadata: {serverAddress: "http://p:9090", query: "q", threshold: 4}}]
        """).isEmpty(), "KEDA metadata values are strings");
    assertFalse(problems("""
        apiVersion: v1
        kind: Gizmo
        metadata: {name: g}
        """).isEmpty(), "unknown kind");
  }

  private static List<String> problems(String yaml) {
    List<String> out = new ArrayList<>();
    for (Doc d : DeployFiles.parse(Path.of("inline.yaml"), yaml)) {
      out.addAll(K8sObjects.problems(d.body()));
    }
    return out;
  }

  // ---- command lines ----------------------------------------------------------------------

  private static Path sampleKey;

  /** A key file standing in for the Secret the manifests mount. */
  private static synchronized Path sampleKey() {
    if (sampleKey == null) {
      try {
        sampleKey = Files.createTempFile("zcow-sample", ".key");
        Files.write(sampleKey, new byte[32]);
        sampleKey.toFile().deleteOnExit();
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
    return sampleKey;
  }

  @Test
  void everyZcowCommandLineInDeployIsAcceptedByTheParser() {
    List<CommandLineAt> all = commandLines();
    List<String> problems = new ArrayList<>();
    for (CommandLineAt c : all) {
      try {
        CommandLine.ParseResult parsed = Main.commandLine().parseArgs(c.args().toArray(String[]::new));
        if (!c.args().equals(List.of("--help")) && !parsed.hasSubcommand()) {
          problems.add(c.where() + ": no zcow command in " + c.args());
        }
        if (parsed.hasSubcommand() && parsed.subcommand().commandSpec().userObject() instanceof WorkerCommand w) {
          if (w.kafka.client.authKeyFile != null && !Files.exists(w.kafka.client.authKeyFile)) {
            w.kafka.client.authKeyFile = sampleKey(); // the mounted Secret of the manifests
          }
          w.config(); // the worker's own checks of its option values
        }
      } catch (CommandLine.ParameterException | io.zcow.BadInputException e) {
        problems.add(c.where() + ": " + c.args() + ": " + e.getMessage());
      }
    }
    assertTrue(problems.isEmpty(), String.join("\n", problems));
    for (String origin : List.of("k8s", "compose", "run.sh")) {
      Set<String> roles = new TreeSet<>();
      all.stream().filter(c -> c.origin().equals(origin)).forEach(c -> roles.add(c.role()));
      assertTrue(roles.containsAll(ROLES), origin + " runs " + roles + ", not every role of " + ROLES);
    }
    assertTrue(all.stream().anyMatch(c -> c.origin().equals("Dockerfile")), "the Dockerfile's CMD");
  }

  /** Examples in comments (compose, Dockerfile) and in docs/OPERATIONS.md parse too. */
  @Test
  void exampleCommandLinesInCommentsAndOperationsParse() throws IOException {
    Pattern example = Pattern.compile("(?:-jar \\S*zcow\\.jar|docker run --rm (?:localhost/)?zcow|docker[ -]compose run --rm backup)"
        + "[ \\t]+([a-z][a-z-]*[^\\n`]*)");
    List<Path> files = new ArrayList<>();
    try (var s = Files.walk(DeployFiles.deploy())) {
      s.filter(Files::isRegularFile).forEach(files::add);
    }
    files.add(DeployFiles.root().resolve("docs/OPERATIONS.md"));
    int examples = 0;
    for (Path f : files) {
      // comment lines continued with a backslash are one command line
      String text = Files.readString(f).replaceAll("\\\\[ \\t]*\\n[ \\t]*#?[ \\t]*", " ");
      Matcher m = example.matcher(text);
      while (m.find()) {
        String line = m.group(1).trim();
        if (line.startsWith("/") || line.contains("...")) {
          continue; // a path (COPY ... zcow.jar /opt/...), or an elided example
        }
        String[] args = line.split("\\s+");
        try {
          assertTrue(Main.commandLine().parseArgs(args).hasSubcommand(), f + ": " + line);
        } catch (CommandLine.ParameterException e) {
          fail(f.getFileName() + ": zcow " + line + ": " + e.getMessage());
        }
        examples++;
      }
    }
    assertTrue(examples >= 4, "examples found: " + examples);
  }

  @Test
  void eachRoleHasTheSameOptionsInKubernetesComposeAndRunSh() {
    Map<String, Map<String, Set<String>>> byRole = new TreeMap<>();
    for (CommandLineAt c : commandLines()) {
      if (!ROLES.contains(c.role())) {
        continue;
      }
      Map<String, Set<String>> byOrigin = byRole.computeIfAbsent(c.role(), r -> new TreeMap<>());
      Set<String> previous = byOrigin.putIfAbsent(c.origin(), c.options());
      if (previous != null) {
        assertEquals(previous, c.options(), c.where() + ": the same role with other options in " + c.origin());
      }
    }
    for (var e : byRole.entrySet()) {
      Set<String> k8s = e.getValue().get("k8s");
      assertNotNull(k8s, e.getKey() + " is not in deploy/k8s");
      assertEquals(Set.of("compose", "k8s", "run.sh"), e.getValue().keySet(), e.getKey());
      e.getValue().forEach((origin, options) ->
          assertEquals(k8s, options, "zcow " + e.getKey() + " in " + origin + " vs deploy/k8s"));
    }
  }

  // ---- agreement with the code --------------------------------------------------------------

  @Test
  void topicsAndTheirSettingsAreTheCodes() {
    TopicSetup.Plan plan = TopicSetup.Plan.defaults(WriterConfig.DEFAULT_GROUP);
    Map<String, Map<String, Object>> topics = new TreeMap<>();
    for (Doc d : k8sBase()) {
      if (d.kind().equals("KafkaTopic")) {
        Map<String, Object> spec = map(d.body(), "spec");
        assertEquals(d.name(), spec.get("topicName"), d.where());
        topics.put(d.name(), spec);
      }
    }
    String chunks = Topics.chunks(WriterConfig.DEFAULT_GROUP);
    assertEquals(new TreeSet<>(List.of(Topics.JOBS, Topics.TASKS, Topics.EVENTS, chunks)), topics.keySet());
    assertEquals("compact", map(topics.get(Topics.JOBS), "config").get("cleanup.policy"));
    assertEquals(1, topics.get(Topics.JOBS).get("partitions"));
    assertEquals(1, topics.get(Topics.EVENTS).get("partitions"));
    assertEquals(plan.taskPartitions(), topics.get(Topics.TASKS).get("partitions"));
    assertEquals(plan.chunkPartitions(), topics.get(chunks).get("partitions"));
    long maxMessage = ((Number) map(topics.get(chunks), "config").get("max.message.bytes")).longValue();
    long segment = ((Number) map(topics.get(chunks), "config").get("segment.bytes")).longValue();
    assertEquals(ChunkLimits.topicMaxMessageBytes(), maxMessage, "chunks max.message.bytes");
    assertEquals(TopicSetup.CHUNK_SEGMENT_BYTES, segment, "chunks segment.bytes");
    assertEquals((long) TopicSetup.CHUNK_SEGMENT_INDEX_BYTES,
        ((Number) map(topics.get(chunks), "config").get("segment.index.bytes")).longValue(), "chunks segment.index.bytes");
    assertTrue(segment > maxMessage, "a segment holds a whole record");

    Map<String, Object> config = map(map(kafkaCluster().body(), "spec"), "kafka");
    config = map(config, "config");
    long replicaFetch = ((Number) config.get("replica.fetch.max.bytes")).longValue();
    assertTrue(replicaFetch >= maxMessage, "replica.fetch.max.bytes " + replicaFetch + " < " + maxMessage);
    long retentionCheck = ((Number) config.get("log.retention.check.interval.ms")).longValue();
    assertTrue(retentionCheck <= 60_000, "trimmed chunks come back late: log.retention.check.interval.ms " + retentionCheck);
    for (String key : List.of("group.share.min.heartbeat.interval.ms", "group.share.heartbeat.interval.ms")) {
      assertEquals(io.zcow.cli.embedded.EmbeddedBroker.tuning().get(key), String.valueOf(config.get(key)),
          key + ": the embedded broker's value");
    }
    long maxLock = ((Number) config.get("group.share.max.record.lock.duration.ms")).longValue();
    assertTrue(maxLock >= plan.lockDuration().toMillis(), "the coordinator's lock duration fits the broker's maximum");
    assertEquals(Boolean.FALSE, config.get("auto.create.topics.enable"));
  }

  @Test
  void kafkaZooKeeperAndMetricsPortsAgreeWithTheCommandLines() {
    Map<String, Object> kafkaSpec = map(map(kafkaCluster().body(), "spec"), "kafka");
    String kafkaVersion = String.valueOf(kafkaSpec.get("version"));
    assertTrue(kafkaVersion.compareTo("4.2") >= 0, "share groups need Kafka >= 4.2: " + kafkaVersion);
    Set<String> bootstraps = new TreeSet<>();
    for (Map<String, Object> l : maps(kafkaSpec.get("listeners"))) {
      bootstraps.add(kafkaCluster().name() + "-kafka-bootstrap:" + l.get("port"));
    }
    String zk = null;
    for (Doc d : k8sBase()) {
      if (d.kind().equals("Service") && d.name().equals("zookeeper")) {
        zk = "zookeeper:" + maps(at(d.body(), "spec.ports")).get(0).get("port");
      }
    }
    assertNotNull(zk, "Service zookeeper");
    for (CommandLineAt c : commandLines()) {
      if (!c.origin().equals("k8s")) {
        continue;
      }
      if (c.value("--kafka") != null) {
        assertTrue(bootstraps.contains(c.value("--kafka")), c.where() + ": --kafka " + c.value("--kafka")
            + " is none of the Strimzi bootstrap addresses " + bootstraps);
      }
      if (c.value("--zookeeper") != null) {
        assertEquals(zk, c.value("--zookeeper"), c.where());
      }
    }

    int checked = 0;
    for (Doc d : k8sBase()) {
      for (Map<String, Object> pod : podTemplates(d)) {
        for (Map<String, Object> container : maps(at(pod, "spec.containers"))) {
          List<String> args = strings(container.get("args"));
          int i = args.indexOf("--metrics-port");
          if (!isZcow(container) || i < 0) {
            continue;
          }
          int port = Integer.parseInt(args.get(i + 1));
          Integer declared = null;
          for (Map<String, Object> p : maps(container.get("ports"))) {
            if ("metrics".equals(p.get("name"))) {
              declared = (Integer) p.get("containerPort");
            }
          }
          assertEquals(port, declared, d.where() + ": containerPort 'metrics' vs --metrics-port");
          assertEquals(Integer.toString(port), map(map(pod, "metadata"), "annotations").get("prometheus.io/port"),
              d.where() + ": prometheus.io/port");
          assertTrue(serviceTargets(labels(pod), "metrics"), d.where() + ": a Service exposes its metrics port");
          checked++;
        }
      }
    }
    assertEquals(2, checked, "writer and worker serve metrics");
  }

  @Test
  void autoscalingReadsTheWritersPendingRangesGauge() {
    Doc scaled = k8sBase().stream().filter(d -> d.kind().equals("ScaledObject")).findFirst().orElseThrow();
    Map<String, Object> trigger = maps(at(scaled.body(), "spec.triggers")).get(0);
    assertEquals("prometheus", trigger.get("type"), "KEDA's kafka scaler reads consumer lag, which share groups lack");
    String query = String.valueOf(at(trigger, "metadata.query"));
    assertTrue(query.contains(WriterMetrics.RANGES_PENDING), query);
    assertTrue(query.contains("group=\"" + WriterConfig.DEFAULT_GROUP + "\""), query);
    assertEquals("zcow-worker", at(scaled.body(), "spec.scaleTargetRef.name"));
    boolean hpa = false;
    for (Doc d : docs(DeployFiles.deploy().resolve("k8s/components/hpa-external-metric"))) {
      if (d.kind().equals("HorizontalPodAutoscaler")) {
        Map<String, Object> metric = maps(at(d.body(), "spec.metrics")).get(0);
        assertEquals(WriterMetrics.RANGES_PENDING, at(metric, "external.metric.name"));
        assertEquals(WriterConfig.DEFAULT_GROUP, at(metric, "external.metric.selector.matchLabels.group"));
        hpa = true;
      }
    }
    assertTrue(hpa, "the HPA alternative");
  }

  @Test
  void zcowContainersSetOnlyVariablesTheCodeReadsAndMountTheAuthKey() throws IOException {
    int containers = 0;
    for (Doc d : k8sAll()) {
      for (Map<String, Object> pod : podTemplates(d)) {
        Map<String, String> secretVolumes = new LinkedHashMap<>();
        for (Map<String, Object> v : maps(at(pod, "spec.volumes"))) {
          if (at(v, "secret.secretName") != null) {
            secretVolumes.put(String.valueOf(v.get("name")), String.valueOf(at(v, "secret.secretName")));
          }
        }
        for (Map<String, Object> c : maps(at(pod, "spec.containers"))) {
          if (!isZcow(c)) {
            continue;
          }
          containers++;
          for (Map<String, Object> e : maps(c.get("env"))) {
            assertTrue(ZCOW_ENV.contains(String.valueOf(e.get("name"))), d.where() + ": env " + e.get("name")
                + " is read by nothing (zcow reads " + ZCOW_ENV + ")");
          }
          assertTrue(maps(c.get("volumeMounts")).stream().anyMatch(m -> AUTH_DIR.equals(m.get("mountPath"))
                  && Boolean.TRUE.equals(m.get("readOnly"))
                  && AUTH_SECRET.equals(secretVolumes.get(String.valueOf(m.get("name"))))),
              d.where() + ": the Secret " + AUTH_SECRET + " mounted read-only at " + AUTH_DIR);
          assertEquals(Boolean.TRUE, at(pod, "spec.securityContext.runAsNonRoot"), d.where());
          assertEquals(dockerfileUid(), at(pod, "spec.securityContext.runAsUser"), d.where() + ": the image's user");
          assertEquals(Boolean.FALSE, at(c, "securityContext.allowPrivilegeEscalation"), d.where());
          assertEquals(List.of("ALL"), at(c, "securityContext.capabilities.drop"), d.where());
        }
      }
    }
    assertEquals(3, containers, "writer, worker and the backup Job");

    int services = 0;
    for (var e : composeServices().entrySet()) {
      Map<String, Object> s = e.getValue();
      if (!ZCOW_IMAGE.equals(s.get("image"))) {
        continue;
      }
      services++;
      map(s, "environment").keySet().forEach(k ->
          assertTrue(ZCOW_ENV.contains(k), "compose " + e.getKey() + ": environment " + k + " is read by nothing"));
      assertTrue(maps(s.get("secrets")).stream().anyMatch(x -> (AUTH_DIR + "/key").equals(x.get("target"))),
          "compose " + e.getKey() + ": the key at " + AUTH_DIR + "/key");
    }
    assertEquals(4, services, "writer-1, writer-2, worker and backup in compose: " + composeServices().keySet());
  }

  @Test
  void composeRunsTheLaptopClusterOnOneSharedVolume() {
    Map<String, Map<String, Object>> services = composeServices();
    assertTrue(services.keySet().containsAll(List.of("kafka", "zookeeper", "writer-1", "writer-2", "worker", "backup")));
    assertEquals(3, at(services.get("worker"), "deploy.replicas"));
    assertEquals(strings(services.get("writer-1").get("volumes")), strings(services.get("writer-2").get("volumes")));
    Map<String, Object> kafkaEnv = map(services.get("kafka"), "environment");
    assertTrue(String.valueOf(kafkaEnv.get("KAFKA_ADVERTISED_LISTENERS")).contains("//kafka:9092"));
    assertTrue(String.valueOf(services.get("kafka").get("image")).matches("localhost/zcow-kafka:4\\.([2-9]|\\d\\d).*"));
    assertTrue(((Number) kafkaEnv.get("KAFKA_LOG_RETENTION_CHECK_INTERVAL_MS")).longValue() <= 60_000);
    for (CommandLineAt c : commandLines()) {
      if (c.origin().equals("compose")) {
        assertEquals(c.value("--kafka") == null ? null : "kafka:9092", c.value("--kafka"), c.where());
        assertEquals(c.value("--zookeeper") == null ? null : "zookeeper:2181", c.value("--zookeeper"), c.where());
      }
    }
  }

  @Test
  void composeRunsTheLocalImagesAndChecksHealthWithWhatTheyHold() throws IOException {
    Map<String, Map<String, Object>> services = composeServices();
    assertEquals(IMAGES.getProperty("kafka"), services.get("kafka").get("image"));
    assertEquals(IMAGES.getProperty("zookeeper"), services.get("zookeeper").get("image"));
    for (String name : List.of("kafka", "zookeeper")) {
      List<String> test = strings(at(services.get(name), "healthcheck.test"));
      assertEquals("CMD", test.get(0), name + ": a healthcheck runs a command of the image, no shell");
      Path script = DeployFiles.deploy().resolve("images/" + name + "/" + test.get(1));
      assertTrue(Files.isExecutable(script), name + ": the healthcheck " + test.get(1) + " is not in deploy/images/" + name);
      assertTrue(Files.readString(DeployFiles.deploy().resolve("images/" + name + "/Dockerfile")).contains(test.get(1)),
          name + ": its Dockerfile does not copy " + test.get(1));
    }
  }

  @Test
  void networkPoliciesSelectPodsThatExist() {
    List<Map<String, String>> podLabels = new ArrayList<>();
    for (Doc d : k8sAll()) {
      podTemplates(d).forEach(p -> podLabels.add(labels(p)));
    }
    int selectors = 0;
    for (Doc d : k8sBase()) {
      if (!d.kind().equals("NetworkPolicy")) {
        continue;
      }
      for (Map<String, Object> rule : maps(at(d.body(), "spec.ingress"))) {
        for (Map<String, Object> from : maps(rule.get("from"))) {
          Map<String, Object> want = map(map(from, "podSelector"), "matchLabels");
          if (want.isEmpty()) {
            continue;
          }
          selectors++;
          assertTrue(podLabels.stream().anyMatch(l -> l.entrySet().containsAll(stringMap(want).entrySet())),
              d.where() + ": no pod has the labels " + want);
        }
      }
    }
    assertTrue(selectors >= 3);
  }

  @Test
  void theDockerfileRunsTheShadedJarOnJava17AsNonRoot() throws IOException {
    String df = Files.readString(DeployFiles.deploy().resolve("docker/Dockerfile"));
    List<String> froms = lines(df, "FROM ");
    assertEquals(List.of("FROM ${BASE_IMAGE}"), froms, "one stage, on the base image given as a build argument");
    List<String> base = lines(df, "ARG BASE_IMAGE=");
    assertEquals(1, base.size(), "a default base image");
    assertTrue(base.get(0).matches("ARG BASE_IMAGE=\\S*(temurin|openjdk|jre)\\S*:17\\S*"), base.toString());
    assertTrue(dockerfileUid() > 0);
    Matcher entry = Pattern.compile("(?m)^ENTRYPOINT \\[\"java\", \"-jar\", \"([^\"]+)\"]$").matcher(df);
    assertTrue(entry.find(), "ENTRYPOINT java -jar JAR");
    assertTrue(df.contains("COPY zcow.jar " + entry.group(1)), "copies zcow.jar of the build context");
    String build = Files.readString(DeployFiles.deploy().resolve("images/build.sh"));
    assertTrue(build.contains("jar=$root/cli/target/zcow.jar"), "build.sh puts the jar the cli module builds in the context");
  }

  // ---- kustomize --------------------------------------------------------------------------

  @Test
  void theKustomizationMapsTheZcowImageToTheOneBuiltHere() {
    Doc k = DeployFiles.read(DeployFiles.deploy().resolve("k8s/base/kustomization.yaml")).get(0);
    Map<String, Object> zcow = maps(k.body().get("images")).stream().filter(i -> "zcow".equals(i.get("name")))
        .findFirst().orElseThrow(() -> new AssertionError("no images entry for zcow in " + k.where()));
    assertEquals(ZCOW_IMAGE, zcow.get("newName") + ":" + zcow.get("newTag"), k.where());
  }

  @Test
  void overlaysAndComponentsRenderWithKubectlKustomize(@TempDir Path tmp) throws Exception {
    assumeTrue(kubectl(), "kubectl is not installed");
    Path k8s = DeployFiles.deploy().resolve("k8s");
    List<Doc> dev = render(k8s.resolve("overlays/dev"));
    List<Doc> prod = render(k8s.resolve("overlays/prod"));
    for (List<Doc> rendered : List.of(dev, prod)) {
      List<String> problems = new ArrayList<>();
      for (Doc d : rendered) {
        K8sObjects.problems(d.body()).forEach(p -> problems.add(d.where() + ": " + p));
      }
      assertTrue(problems.isEmpty(), String.join("\n", problems));
    }
    assertEquals(1, replicas(dev, "StatefulSet", "zookeeper"));
    assertEquals(1, replicas(dev, "KafkaNodePool", "combined"));
    assertEquals(2, replicas(dev, "StatefulSet", "zcow-writer"));
    assertEquals(3, replicas(prod, "StatefulSet", "zookeeper"));
    assertEquals(3, replicas(prod, "KafkaNodePool", "combined"));
    assertEquals(2, replicas(prod, "StatefulSet", "zcow-writer"));
    String servers = zooServers(prod);
    for (int i = 0; i < 3; i++) {
      assertTrue(servers.contains("server." + (i + 1) + "=zookeeper-" + i + ".zookeeper-headless:2888:3888;2181"), servers);
    }
    for (Doc d : prod) {
      if (d.kind().equals("KafkaTopic")) {
        int rf = (Integer) at(d.body(), "spec.replicas");
        int minIsr = (Integer) map(map(d.body(), "spec"), "config").get("min.insync.replicas");
        assertTrue(rf <= 3 && minIsr < rf, d.where() + ": replicas " + rf + ", min.insync.replicas " + minIsr);
      }
    }
    assertEquals(List.of("ReadWriteMany"), at(object(prod, "PersistentVolumeClaim", "zcow-target"), "spec.accessModes"));
    assertEquals(1, at(object(prod, "PodDisruptionBudget", "zcow-writer"), "spec.minAvailable"));

    // Each component on top of the dev overlay, through a kustomization outside the repository.
    Path rel = tmp.toAbsolutePath().relativize(k8s.toAbsolutePath());
    List<Doc> single = render(withComponent(tmp, rel, "single-writer"));
    assertEquals(1, replicas(single, "StatefulSet", "zcow-writer"));
    assertEquals(List.of("ReadWriteOnce"), at(object(single, "PersistentVolumeClaim", "zcow-target"), "spec.accessModes"));
    assertEquals(1, at(object(single, "PodDisruptionBudget", "zcow-writer"), "spec.maxUnavailable"));
    List<Doc> hpa = render(withComponent(tmp, rel, "hpa-external-metric"));
    assertTrue(hpa.stream().noneMatch(d -> d.kind().equals("ScaledObject")), "the HPA replaces the ScaledObject");
    assertNotNull(object(hpa, "HorizontalPodAutoscaler", "zcow-worker"));
    for (Doc d : single) {
      assertTrue(K8sObjects.problems(d.body()).isEmpty(), d.where() + ": " + K8sObjects.problems(d.body()));
    }
    List<Doc> monitoring = render(withComponent(tmp, rel, "monitoring"));
    assertNotNull(object(monitoring, "PrometheusRule", "zcow"));
    Map<String, Object> dashboard = object(monitoring, "ConfigMap", "zcow-dashboard");
    assertEquals("1", at(dashboard, "metadata.labels.grafana_dashboard"), "found by Grafana's dashboard sidecar");
    assertTrue(String.valueOf(map(dashboard, "data").get("zcow-dashboard.json")).contains("zcow-overview"));
  }

  private static Path withComponent(Path tmp, Path relK8s, String component) throws IOException {
    Path dir = Files.createDirectories(tmp.resolve(component));
    Files.writeString(dir.resolve("kustomization.yaml"), """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - ../%1$s/overlays/dev
        components:
          - ../%1$s/components/%2$s
        """.formatted(relK8s.toString().replace('\\', '/'), component));
    return dir;
  }

  static boolean kubectl() {
    try {
      Process p = new ProcessBuilder("kubectl", "version", "--client").redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  private static List<Doc> render(Path dir) throws IOException, InterruptedException {
    Process p = new ProcessBuilder("kubectl", "kustomize", dir.toString()).start();
    byte[] err;
    String out;
    try (var stderr = p.getErrorStream(); var stdout = p.getInputStream()) {
      out = new String(stdout.readAllBytes(), StandardCharsets.UTF_8);
      err = stderr.readAllBytes();
    }
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "kubectl kustomize " + dir);
    assertEquals(0, p.exitValue(), "kubectl kustomize " + dir + ": " + new String(err, StandardCharsets.UTF_8));
    List<Doc> docs = DeployFiles.parse(dir.resolve("rendered.yaml"), out);
    assertFalse(docs.isEmpty(), "kubectl kustomize " + dir + " rendered nothing");
    return docs;
  }

  private static Map<String, Object> object(List<Doc> docs, String kind, String name) {
    return docs.stream().filter(d -> d.kind().equals(kind) && d.name().equals(name)).findFirst()
        .orElseThrow(() -> new AssertionError("no " + kind + " " + name)).body();
  }

  private static int replicas(List<Doc> docs, String kind, String name) {
    return (Integer) at(object(docs, kind, name), "spec.replicas");
  }

  private static String zooServers(List<Doc> docs) {
    Map<String, Object> sts = object(docs, "StatefulSet", "zookeeper");
    for (Map<String, Object> c : maps(at(sts, "spec.template.spec.containers"))) {
      for (Map<String, Object> e : maps(c.get("env"))) {
        if ("ZOO_SERVERS".equals(e.get("name"))) {
          return String.valueOf(e.get("value"));
        }
      }
    }
    return fail("no ZOO_SERVERS");
  }

  // ---- what is in deploy/ --------------------------------------------------------------

  /** Every object of deploy/k8s, patches included, but not the kustomizations themselves. */
  static List<Doc> k8sObjects() {
    List<Doc> out = new ArrayList<>();
    for (Path f : DeployFiles.yamlFiles(DeployFiles.deploy().resolve("k8s"))) {
      for (Doc d : DeployFiles.read(f)) {
        if (!Set.of("Kustomization", "Component").contains(d.kind())) {
          out.add(d);
        }
      }
    }
    return out;
  }

  /** The base's objects, and the backup Job template. */
  static List<Doc> k8sAll() {
    List<Doc> out = new ArrayList<>(k8sBase());
    out.addAll(DeployFiles.read(DeployFiles.deploy().resolve("k8s/backup-job.yaml")));
    return out;
  }

  static List<Doc> k8sBase() {
    return docs(DeployFiles.deploy().resolve("k8s/base"));
  }

  private static List<Doc> docs(Path dir) {
    List<Doc> out = new ArrayList<>();
    for (Path f : DeployFiles.yamlFiles(dir)) {
      for (Doc d : DeployFiles.read(f)) {
        if (!Set.of("Kustomization", "Component").contains(d.kind())) {
          out.add(d);
        }
      }
    }
    return out;
  }

  private static Doc kafkaCluster() {
    return k8sBase().stream().filter(d -> d.kind().equals("Kafka")).findFirst().orElseThrow();
  }

  @SuppressWarnings("unchecked")
  static List<Map<String, Object>> podTemplates(Doc d) {
    return switch (d.kind()) {
      case "Deployment", "StatefulSet" -> List.of((Map<String, Object>) at(d.body(), "spec.template"));
      case "Job" -> List.of((Map<String, Object>) at(d.body(), "spec.template"));
      default -> List.of();
    };
  }

  static boolean isZcow(Map<String, Object> container) {
    return String.valueOf(container.get("image")).matches("zcow(:.*)?");
  }

  private static Map<String, String> labels(Map<String, Object> pod) {
    return stringMap(map(map(pod, "metadata"), "labels"));
  }

  private static Map<String, String> stringMap(Map<String, Object> m) {
    Map<String, String> out = new LinkedHashMap<>();
    m.forEach((k, v) -> out.put(k, String.valueOf(v)));
    return out;
  }

  private boolean serviceTargets(Map<String, String> podLabels, String portName) {
    for (Doc d : k8sBase()) {
      if (!d.kind().equals("Service")) {
        continue;
      }
      Map<String, String> selector = stringMap(map(map(d.body(), "spec"), "selector"));
      if (!selector.isEmpty() && podLabels.entrySet().containsAll(selector.entrySet())
          && maps(at(d.body(), "spec.ports")).stream().anyMatch(p -> portName.equals(p.get("targetPort")))) {
        return true;
      }
    }
    return false;
  }

  private static Properties images() {
    Properties p = new Properties();
    try (var in = DeployManifestsTest.class.getResourceAsStream("/zcow-images.properties")) {
      assertNotNull(in, "testkit's zcow-images.properties");
      p.load(in);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return p;
  }

  @SuppressWarnings("unchecked")
  static Map<String, Map<String, Object>> composeServices() {
    List<Doc> docs = DeployFiles.read(DeployFiles.deploy().resolve("compose/compose.yaml"));
    assertEquals(1, docs.size());
    Map<String, Map<String, Object>> out = new TreeMap<>();
    map(docs.get(0).body(), "services").forEach((k, v) -> out.put(k, (Map<String, Object>) v));
    return out;
  }

  private static int dockerfileUid() {
    try {
      List<String> users = lines(Files.readString(DeployFiles.deploy().resolve("docker/Dockerfile")), "USER ");
      assertEquals(1, users.size(), "one USER line");
      String user = users.get(0).substring(5).trim();
      return Integer.parseInt(user.contains(":") ? user.substring(0, user.indexOf(':')) : user);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static List<String> lines(String text, String prefix) {
    return text.lines().filter(l -> l.startsWith(prefix)).toList();
  }

  /** Every zcow command line in deploy/: k8s containers, compose services, the Dockerfile's CMD, run.sh. */
  static List<CommandLineAt> commandLines() {
    List<CommandLineAt> out = new ArrayList<>();
    for (Doc d : k8sObjects()) {
      for (Map<String, Object> pod : podTemplates(d)) {
        for (Map<String, Object> c : maps(at(pod, "spec.containers"))) {
          if (isZcow(c) && c.get("args") != null) {
            assertTrue(c.get("command") == null, d.where() + ": zcow containers use the image's entrypoint");
            out.add(new CommandLineAt(d.file().getFileName() + " " + d.kind() + " " + d.name(), "k8s",
                strings(c.get("args"))));
          }
        }
      }
    }
    composeServices().forEach((name, s) -> {
      if (ZCOW_IMAGE.equals(s.get("image")) && s.get("command") != null) {
        out.add(new CommandLineAt("compose service " + name, "compose", strings(s.get("command"))));
      }
    });
    try {
      String df = Files.readString(DeployFiles.deploy().resolve("docker/Dockerfile"));
      Matcher cmd = Pattern.compile("(?m)^CMD \\[(.*)]$").matcher(df);
      assertTrue(cmd.find(), "the Dockerfile's CMD");
      List<String> args = new ArrayList<>();
      Matcher s = Pattern.compile("\"([^\"]*)\"").matcher(cmd.group(1));
      while (s.find()) {
        args.add(s.group(1));
      }
      out.add(new CommandLineAt("Dockerfile CMD", "Dockerfile", args));
      out.addAll(RunScript.commandLines(DeployFiles.deploy().resolve("local/run.sh")));
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return out;
  }

  /** The command lines of deploy/local/run.sh, with its shell variables replaced by sample values. */
  static final class RunScript {
    static final Map<String, String> SAMPLES = Map.of(
        "$kafka", "127.0.0.1:9092",
        "$zookeeper", "127.0.0.1:2181",
        "$images", "/tmp/zcow-local/images",
        "$source_dir", "/tmp/zcow-local",
        "$source_path", "/tmp/zcow-local/disk.img",
        "$target", "disk.qcow2",
        "$job_id", "disk",
        "$auth_key", "/tmp/zcow-local/auth.key",
        "$((metrics_base + i))", "9405",
        "$((metrics_base + 2 + i))", "9407");

    static List<CommandLineAt> commandLines(Path script) throws IOException {
      String text = Files.readString(script).replace("\\\n", " ");
      List<CommandLineAt> out = new ArrayList<>();
      int n = 0;
      for (String line : text.lines().map(String::trim).toList()) {
        n++;
        List<String> words;
        if (line.startsWith("start \"") || line.startsWith("start dev-cluster")) {
          words = words(line);
          words = words.subList(2, words.size());
        } else if (line.startsWith("\"${zcow[@]}\" backup")) {
          words = words(line);
          words = words.subList(1, words.size());
        } else {
          continue;
        }
        List<String> args = new ArrayList<>();
        for (String w : words) {
          if (w.equals("<") || w.equals("||") || w.equals(">")) {
            break;
          }
          if (w.equals("$@")) {
            continue;
          }
          if (w.contains("$")) {
            String sample = SAMPLES.get(w);
            assertNotNull(sample, "run.sh line " + n + ": no sample value for " + w + " (add one to RunScript.SAMPLES)");
            args.add(sample);
          } else {
            args.add(w);
          }
        }
        out.add(new CommandLineAt("run.sh: " + line, "run.sh", args));
      }
      return out;
    }

    /** Shell words: double-quoted text is one word, quotes removed; no expansion. */
    private static List<String> words(String line) {
      List<String> out = new ArrayList<>();
      StringBuilder cur = new StringBuilder();
      boolean quoted = false;
      boolean any = false;
      for (char c : line.toCharArray()) {
        if (c == '"') {
          quoted = !quoted;
          any = true;
        } else if (Character.isWhitespace(c) && !quoted) {
          if (any) {
            out.add(cur.toString());
          }
          cur.setLength(0);
          any = false;
        } else {
          cur.append(c);
          any = true;
        }
      }
      if (any) {
        out.add(cur.toString());
      }
      return out;
    }
  }
}
