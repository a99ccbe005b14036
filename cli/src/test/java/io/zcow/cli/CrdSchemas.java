package io.zcow.cli;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The fields of the custom resources zcow's manifests use, after their CRDs: Strimzi's
 * kafka.strimzi.io/v1beta2 Kafka, KafkaNodePool and KafkaTopic, and KEDA's keda.sh/v1alpha1
 * ScaledObject with its prometheus trigger. Not every field of those CRDs is listed: a field that
 * is not here fails the test, and is added (after checking the CRD) when a manifest needs it.
 */
final class CrdSchemas {
  private CrdSchemas() {}

  /** A schema node: checks a value at a path, adding what is wrong to a list. */
  interface Node {
    void check(Object value, String path, List<String> out);
  }

  static final Node ANY = (v, p, out) -> { };
  static final Node STR = (v, p, out) -> {
    if (!(v instanceof String)) {
      out.add(p + ": must be a string, is " + describe(v));
    }
  };
  static final Node INT = (v, p, out) -> {
    if (!(v instanceof Integer || v instanceof Long)) {
      out.add(p + ": must be an integer, is " + describe(v));
    }
  };
  static final Node BOOL = (v, p, out) -> {
    if (!(v instanceof Boolean)) {
      out.add(p + ": must be true or false, is " + describe(v));
    }
  };
  /** A mapping of any keys to scalar values (Kafka and topic configs, labels). */
  static final Node SCALARS = (v, p, out) -> {
    if (!(v instanceof Map<?, ?> m)) {
      out.add(p + ": must be a mapping, is " + describe(v));
      return;
    }
    m.forEach((k, x) -> {
      if (x instanceof Map || x instanceof List) {
        out.add(p + "." + k + ": must be a scalar");
      }
    });
  };
  /** A mapping of any keys to strings (labels, annotations, KEDA trigger metadata). */
  static final Node STRINGS = (v, p, out) -> {
    if (!(v instanceof Map<?, ?> m)) {
      out.add(p + ": must be a mapping, is " + describe(v));
      return;
    }
    m.forEach((k, x) -> STR.check(x, p + "." + k, out));
  };

  static Node oneOf(String... values) {
    Set<String> allowed = Set.of(values);
    return (v, p, out) -> {
      if (!(v instanceof String s) || !allowed.contains(s)) {
        out.add(p + ": must be one of " + allowed + ", is " + describe(v));
      }
    };
  }

  static Node listOf(Node element) {
    return (v, p, out) -> {
      if (!(v instanceof List<?> l)) {
        out.add(p + ": must be a list, is " + describe(v));
        return;
      }
      for (int i = 0; i < l.size(); i++) {
        element.check(l.get(i), p + "[" + i + "]", out);
      }
    };
  }

  /** A mapping with exactly these optional fields (key, node, key, node, ...). */
  static Node obj(Object... fieldsAndNodes) {
    Map<String, Node> fields = new LinkedHashMap<>();
    for (int i = 0; i < fieldsAndNodes.length; i += 2) {
      fields.put((String) fieldsAndNodes[i], (Node) fieldsAndNodes[i + 1]);
    }
    return (v, p, out) -> {
      if (!(v instanceof Map<?, ?> m)) {
        out.add(p + ": must be a mapping, is " + describe(v));
        return;
      }
      m.forEach((k, x) -> {
        Node n = fields.get(String.valueOf(k));
        if (n == null) {
          out.add((p.isEmpty() ? "." : p) + ": unknown field " + k + " (known: " + fields.keySet() + ")");
        } else {
          n.check(x, p + "." + k, out);
        }
      });
    };
  }

  private static String describe(Object v) {
    return v == null ? "null" : v.getClass().getSimpleName() + " " + v;
  }

  private static final Node METADATA = obj("name", STR, "namespace", STR, "labels", STRINGS, "annotations", STRINGS);

  private static Node resource(String apiVersion, String kind, Node spec) {
    return obj("apiVersion", oneOf(apiVersion), "kind", oneOf(kind), "metadata", METADATA, "spec", spec);
  }

  /** Kubernetes resource requirements (the fields of core/v1 ResourceRequirements). */
  private static final Node RESOURCES = obj("requests", SCALARS, "limits", SCALARS, "claims", ANY);

  private static final Node KAFKA = resource("kafka.strimzi.io/v1beta2", "Kafka", obj(
      "kafka", obj(
          "version", STR,
          "metadataVersion", STR,
          "listeners", listOf(obj(
              "name", STR,
              "port", INT,
              "type", oneOf("internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip"),
              "tls", BOOL,
              "authentication", obj("type", oneOf("tls", "scram-sha-512", "oauth", "custom")),
              "configuration", ANY,
              "networkPolicyPeers", ANY)),
          "config", SCALARS,
          "authorization", obj("type", oneOf("simple", "opa", "keycloak", "custom"), "superUsers", listOf(STR)),
          "resources", RESOURCES,
          "jvmOptions", ANY,
          "metricsConfig", ANY,
          "logging", ANY,
          "rack", ANY,
          "template", ANY),
      "entityOperator", obj("topicOperator", ANY, "userOperator", ANY, "template", ANY),
      "cruiseControl", ANY,
      "kafkaExporter", ANY));

  private static final Node KAFKA_NODE_POOL = resource("kafka.strimzi.io/v1beta2", "KafkaNodePool", obj(
      "replicas", INT,
      "roles", listOf(oneOf("controller", "broker")),
      "storage", obj(
          "type", oneOf("jbod", "ephemeral", "persistent-claim"),
          "volumes", listOf(obj(
              "id", INT,
              "type", oneOf("ephemeral", "persistent-claim"),
              "size", STR,
              "class", STR,
              "deleteClaim", BOOL,
              "kraftMetadata", oneOf("shared"),
              "selector", STRINGS))),
      "resources", RESOURCES,
      "jvmOptions", ANY,
      "template", ANY));

  private static final Node KAFKA_TOPIC = resource("kafka.strimzi.io/v1beta2", "KafkaTopic", obj(
      "topicName", STR,
      "partitions", INT,
      "replicas", INT,
      "config", SCALARS));

  /** The prometheus trigger's metadata (KEDA: every value a string). */
  private static final Set<String> PROMETHEUS_METADATA = Set.of("serverAddress", "query", "threshold",
      "activationThreshold", "namespace", "customHeaders", "ignoreNullValues", "unsafeSsl", "queryParameters",
      "authModes");

  private static final Node TRIGGER = (v, p, out) -> {
    obj("type", STR, "name", STR, "metadata", STRINGS, "authenticationRef", obj("name", STR, "kind", STR),
        "metricType", oneOf("AverageValue", "Value", "Utilization"), "useCachedMetrics", BOOL).check(v, p, out);
    if (v instanceof Map<?, ?> m && "prometheus".equals(m.get("type")) && m.get("metadata") instanceof Map<?, ?> md) {
      for (String required : List.of("serverAddress", "query", "threshold")) {
        if (!md.containsKey(required)) {
          out.add(p + ".metadata: the prometheus trigger needs " + required);
        }
      }
      md.keySet().forEach(k -> {
        if (!PROMETHEUS_METADATA.contains(String.valueOf(k))) {
          out.add(p + ".metadata: unknown prometheus trigger field " + k);
        }
      });
    }
  };

  private static final Node SCALED_OBJECT = resource("keda.sh/v1alpha1", "ScaledObject", obj(
      "scaleTargetRef", obj("name", STR, "kind", STR, "apiVersion", STR, "envSourceContainerName", STR),
      "pollingInterval", INT,
      "cooldownPeriod", INT,
      "initialCooldownPeriod", INT,
      "idleReplicaCount", INT,
      "minReplicaCount", INT,
      "maxReplicaCount", INT,
      "fallback", obj("failureThreshold", INT, "replicas", INT),
      "advanced", ANY,
      "triggers", listOf(TRIGGER)));

  /** The Prometheus Operator's rule groups (monitoring.coreos.com/v1 PrometheusRule). */
  private static final Node PROMETHEUS_RULE = resource("monitoring.coreos.com/v1", "PrometheusRule", obj(
      "groups", listOf(obj("name", STR, "interval", STR, "limit", INT, "partial_response_strategy", STR,
          "rules", listOf(obj("alert", STR, "record", STR, "expr", STR, "for", STR, "keep_firing_for", STR,
              "labels", STRINGS, "annotations", STRINGS))))));

  private static final Map<String, Node> ALL = Map.of(
      "kafka.strimzi.io/v1beta2/Kafka", KAFKA,
      "kafka.strimzi.io/v1beta2/KafkaNodePool", KAFKA_NODE_POOL,
      "kafka.strimzi.io/v1beta2/KafkaTopic", KAFKA_TOPIC,
      "keda.sh/v1alpha1/ScaledObject", SCALED_OBJECT,
      "monitoring.coreos.com/v1/PrometheusRule", PROMETHEUS_RULE);

  /** The schema of "apiVersion/kind", or null. */
  static Node of(String type) {
    return ALL.get(type);
  }
}
