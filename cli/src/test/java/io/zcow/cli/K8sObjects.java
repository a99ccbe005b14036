package io.zcow.cli;

import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.type.LogicalType;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.PersistentVolumeClaim;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a manifest as the Kubernetes object its apiVersion and kind claim, and lists every field
 * that object does not have (a misspelt or misplaced field that the API server would drop or
 * refuse) and every value of the wrong type.
 *
 * <p>Core objects go through the typed fabric8 model: Jackson fails on a wrong type, and a field
 * the model does not know lands in an object's additional properties, which are walked and must
 * be empty. Custom resources (Strimzi's Kafka, KafkaNodePool, KafkaTopic; KEDA's ScaledObject)
 * are checked against {@link CrdSchemas}, the fields of their CRDs that zcow may use.
 */
final class K8sObjects {
  /** No coercion: a quoted number or a number where a string belongs is refused, as the API server does. */
  private static final ObjectMapper JSON = strict();
  private static final Map<String, Class<?>> CORE = Map.ofEntries(
      Map.entry("v1/Service", Service.class),
      Map.entry("v1/ConfigMap", ConfigMap.class),
      Map.entry("v1/Secret", Secret.class),
      Map.entry("v1/PersistentVolumeClaim", PersistentVolumeClaim.class),
      Map.entry("v1/Namespace", Namespace.class),
      Map.entry("v1/ServiceAccount", ServiceAccount.class),
      Map.entry("apps/v1/Deployment", Deployment.class),
      Map.entry("apps/v1/StatefulSet", StatefulSet.class),
      Map.entry("batch/v1/Job", Job.class),
      Map.entry("policy/v1/PodDisruptionBudget", PodDisruptionBudget.class),
      Map.entry("networking.k8s.io/v1/NetworkPolicy", NetworkPolicy.class),
      Map.entry("autoscaling/v2/HorizontalPodAutoscaler", HorizontalPodAutoscaler.class));

  private K8sObjects() {}

  private static ObjectMapper strict() {
    ObjectMapper m = JsonMapper.builder().disable(MapperFeature.ALLOW_COERCION_OF_SCALARS).build();
    for (LogicalType t : List.of(LogicalType.Textual, LogicalType.Integer, LogicalType.Float, LogicalType.Boolean)) {
      m.coercionConfigFor(t)
          .setCoercion(CoercionInputShape.Integer, t == LogicalType.Integer ? CoercionAction.TryConvert : CoercionAction.Fail)
          .setCoercion(CoercionInputShape.Float, t == LogicalType.Float ? CoercionAction.TryConvert : CoercionAction.Fail)
          .setCoercion(CoercionInputShape.String, t == LogicalType.Textual ? CoercionAction.TryConvert : CoercionAction.Fail)
          .setCoercion(CoercionInputShape.Boolean, t == LogicalType.Boolean ? CoercionAction.TryConvert : CoercionAction.Fail);
    }
    return m;
  }

  /** What is wrong with the object (empty when it is a valid object of its kind). */
  static List<String> problems(Map<String, Object> body) {
    String type = body.get("apiVersion") + "/" + body.get("kind");
    Class<?> cls = CORE.get(type);
    if (cls != null) {
      return typed(body, cls);
    }
    CrdSchemas.Node schema = CrdSchemas.of(type);
    if (schema != null) {
      List<String> out = new ArrayList<>();
      schema.check(body, "", out);
      return out;
    }
    return List.of("unknown apiVersion/kind " + type + " (add it to K8sObjects or CrdSchemas)");
  }

  /** The object in the typed model (for assertions on its fields). */
  static <T> T as(Map<String, Object> body, Class<T> cls) {
    return JSON.convertValue(body, cls);
  }

  private static List<String> typed(Map<String, Object> body, Class<?> cls) {
    Object obj;
    try {
      obj = JSON.convertValue(body, cls);
    } catch (IllegalArgumentException e) {
      return List.of("not a " + cls.getSimpleName() + ": " + e.getMessage());
    }
    List<String> out = new ArrayList<>();
    walk(obj, "", out, new IdentityHashMap<>());
    return out;
  }

  private static void walk(Object o, String path, List<String> out, IdentityHashMap<Object, Boolean> seen) {
    if (o == null || seen.put(o, Boolean.TRUE) != null) {
      return;
    }
    if (o instanceof Collection<?> c) {
      int i = 0;
      for (Object e : c) {
        walk(e, path + "[" + i++ + "]", out, seen);
      }
      return;
    }
    if (o instanceof Map<?, ?> m) {
      for (Map.Entry<?, ?> e : m.entrySet()) {
        walk(e.getValue(), path + "." + e.getKey(), out, seen);
      }
      return;
    }
    if (!o.getClass().getName().startsWith("io.fabric8.")) {
      return;
    }
    for (Method getter : o.getClass().getMethods()) {
      if (getter.getParameterCount() != 0 || Modifier.isStatic(getter.getModifiers())
          || getter.getDeclaringClass() == Object.class) {
        continue;
      }
      String name = getter.getName();
      if (name.equals("getAdditionalProperties")) {
        Map<?, ?> extra = (Map<?, ?>) invoke(getter, o);
        if (extra != null && !extra.isEmpty()) {
          out.add((path.isEmpty() ? "." : path) + ": unknown field(s) " + Set.copyOf(extra.keySet()));
        }
      } else if (name.startsWith("get") && name.length() > 3) {
        String field = Character.toLowerCase(name.charAt(3)) + name.substring(4);
        walk(invoke(getter, o), path + "." + field, out, seen);
      }
    }
  }

  private static Object invoke(Method m, Object o) {
    try {
      return m.invoke(o);
    } catch (IllegalAccessException | InvocationTargetException e) {
      return null;
    }
  }
}
