package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.zcow.cli.DeployFiles.Doc;
import io.zcow.cli.embedded.DevCluster;
import io.zcow.cli.embedded.HostPort;
import io.zcow.metrics.MetricsEndpoint;
import io.zcow.testkit.Disks;
import io.zcow.testkit.ExternalTool;
import io.zcow.worker.kafka.Worker;
import io.zcow.worker.kafka.WorkerConfig;
import io.zcow.writer.Writer;
import io.zcow.writer.WriterConfig;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.yaml.snakeyaml.Yaml;

/**
 * deploy/k8s/components/monitoring against a running cluster: every metric (and every exact label
 * value) that the Grafana dashboard and the alert rules name is in the scrapes of a writer and a
 * worker while a job runs, and the rules pass {@code promtool check rules}.
 */
class MonitoringTest {
  private static final Path COMPONENT = DeployFiles.deploy().resolve("k8s/components/monitoring");
  private static final Pattern METRIC = Pattern.compile("\\bzcow_[a-z0-9_]+");
  private static final Pattern SELECTOR = Pattern.compile("\\b(zcow_[a-z0-9_]+)\\{([^}]*)}");
  private static final Pattern EXACT = Pattern.compile("([a-z_]+)=\"([^\"]*)\"");
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  @TempDir Path dir;

  @Test
  void everyMetricTheDashboardAndTheRulesNameIsScrapedFromARunningCluster() throws Exception {
    List<String> exprs = new ArrayList<>(dashboardExprs());
    int dashboard = exprs.size();
    exprs.addAll(ruleExprs());
    assertTrue(dashboard >= 14 && exprs.size() - dashboard >= 12, "exprs: " + exprs);

    Path source = Disks.random(dir.resolve("watched.raw"), 24L << 20, 5);
    Path root = Files.createDirectory(dir.resolve("root"));
    String scrape;
    try (DevCluster cluster = DevCluster.start(HostPort.loopbackAnyPort(), HostPort.loopbackAnyPort(), null)) {
      String kafka = cluster.broker().bootstrapServers();
      String zk = cluster.zooKeeper().connectString();
      PrometheusMeterRegistry writerRegistry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
      PrometheusMeterRegistry workerRegistry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
      WriterConfig wc = WriterConfig.builder(kafka, zk, root).auth(ClusterKeys.auth()).checkpointInterval(Duration.ofSeconds(1))
          .progressInterval(Duration.ofSeconds(1)).build();
      // The read limit keeps the job running while the scrapes are taken (24 MiB at 3 MB/s: ~8 s).
      try (MetricsEndpoint writerEndpoint = MetricsEndpoint.serve(0, writerRegistry);
          MetricsEndpoint workerEndpoint = MetricsEndpoint.serve(0, workerRegistry);
          Writer writer = new Writer(wc, Clock.systemUTC(), writerRegistry).start();
          Worker worker = new Worker(WorkerConfig.builder(ClusterKeys.settings(kafka)).threads(2)
              .maxReadBytesPerSecond(3e6).build(), workerRegistry, Clock.systemUTC())) {
        worker.start();
        CompletableFuture<CliRun> backup = CompletableFuture.supplyAsync(() -> CliRun.of("backup", "--kafka", kafka,
            "--zookeeper", zk, "--range-size", "1m", "--progress", "none", "--job-id", "watched", source.toString(),
            "watched.qcow2"));

        // The job gauges exist while the job runs: scrape the writer then.
        String writerScrape = awaitScrape(writerEndpoint, "zcow_writer_job_ranges{", Duration.ofSeconds(60));
        scrape = writerScrape + get(workerEndpoint, "/metrics").body();

        CliRun done = backup.get(120, TimeUnit.SECONDS);
        assertEquals(0, done.exitCode(), done.err());
        assertEquals(200, head(writerEndpoint, "/metrics"), "HEAD /metrics");
        assertEquals(200, get(workerEndpoint, "/-/healthy").statusCode(), "health endpoint");
      }
    }

    Set<String> missing = new TreeSet<>();
    for (String e : exprs) {
      Matcher m = METRIC.matcher(e);
      while (m.find()) {
        if (!Pattern.compile("(?m)^" + m.group() + "[{ ]").matcher(scrape).find()) {
          missing.add(m.group());
        }
      }
      Matcher s = SELECTOR.matcher(e);
      while (s.find()) {
        Matcher x = EXACT.matcher(s.group(2));
        while (x.find()) {
          String label = x.group(1) + "=\"" + x.group(2) + "\"";
          if (!Pattern.compile("(?m)^" + s.group(1) + "\\{[^}\\n]*" + Pattern.quote(label)).matcher(scrape).find()) {
            missing.add(s.group(1) + "{" + label + "}");
          }
        }
      }
    }
    assertTrue(missing.isEmpty(), "named by deploy/k8s/components/monitoring but not scraped: " + missing
        + "\n--- scrape ---\n" + scrape);
    assertTrue(scrape.contains("job_id=\"watched\""), "per-job gauges carry job_id (not `job`, Prometheus's own label)");
  }

  @Test
  void theAlertRulesPassPromtool() throws Exception {
    Path promtool = ExternalTool.require("promtool", "prometheus");
    Map<String, Object> rule = ruleDoc().body();
    Path rules = dir.resolve("zcow-rules.yaml");
    Files.writeString(rules, new Yaml().dump(Map.of("groups", ((Map<?, ?>) rule.get("spec")).get("groups"))));
    Process p = new ProcessBuilder(promtool.toString(), "check", "rules", rules.toString()).redirectErrorStream(true)
        .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "promtool did not finish");
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("SUCCESS: " + ruleExprs().size() + " rules found"), out);
  }

  @Test
  void theComponentShipsTheDashboardAndTheRules() throws IOException {
    Doc k = DeployFiles.read(COMPONENT.resolve("kustomization.yaml")).get(0);
    assertEquals("Component", k.kind());
    assertTrue(String.valueOf(k.body()).contains("zcow-dashboard.json"), k.body().toString());
    assertTrue(((List<?>) k.body().get("resources")).contains("prometheusrule.yaml"), k.body().toString());
    JsonNode dash = new ObjectMapper().readTree(COMPONENT.resolve("zcow-dashboard.json").toFile());
    assertEquals("zcow-overview", dash.get("uid").asText());
    Set<Integer> ids = new TreeSet<>();
    for (JsonNode p : dash.get("panels")) {
      assertTrue(ids.add(p.get("id").asInt()), "panel ids are unique: " + p.get("id"));
    }
  }

  private static List<String> dashboardExprs() throws IOException {
    List<String> out = new ArrayList<>();
    for (JsonNode p : new ObjectMapper().readTree(COMPONENT.resolve("zcow-dashboard.json").toFile()).get("panels")) {
      for (JsonNode t : p.get("targets")) {
        out.add(t.get("expr").asText());
      }
    }
    return out;
  }

  private static Doc ruleDoc() {
    return DeployFiles.read(COMPONENT.resolve("prometheusrule.yaml")).get(0);
  }

  private static List<String> ruleExprs() {
    List<String> out = new ArrayList<>();
    for (Object g : (List<?>) ((Map<?, ?>) ruleDoc().body().get("spec")).get("groups")) {
      for (Object r : (List<?>) ((Map<?, ?>) g).get("rules")) {
        out.add(String.valueOf(((Map<?, ?>) r).get("expr")));
      }
    }
    return out;
  }

  private static String awaitScrape(MetricsEndpoint endpoint, String needle, Duration patience) throws Exception {
    long deadline = System.nanoTime() + patience.toNanos();
    String body = "";
    while (System.nanoTime() < deadline) {
      body = get(endpoint, "/metrics").body();
      if (body.contains(needle)) {
        return body;
      }
      Thread.sleep(200);
    }
    throw new AssertionError("no " + needle + " within " + patience + ":\n" + body);
  }

  private static HttpResponse<String> get(MetricsEndpoint endpoint, String path) throws Exception {
    return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + endpoint.port() + path)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private static int head(MetricsEndpoint endpoint, String path) throws Exception {
    return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + endpoint.port() + path))
        .method("HEAD", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.discarding())
        .statusCode();
  }
}
