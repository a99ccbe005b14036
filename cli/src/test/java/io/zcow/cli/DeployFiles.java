package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

/** The files under deploy/, read as YAML documents, with helpers to walk them. */
final class DeployFiles {
  private DeployFiles() {}

  /** A YAML document of a file (the n-th of a multi-document file). */
  record Doc(Path file, int index, Map<String, Object> body) {
    String kind() {
      return String.valueOf(body.get("kind"));
    }

    String apiVersion() {
      return String.valueOf(body.get("apiVersion"));
    }

    String name() {
      return String.valueOf(map(body, "metadata").get("name"));
    }

    String where() {
      return file.getFileName() + "#" + index + " (" + kind() + " " + name() + ")";
    }
  }

  /** The repository's root: the nearest directory above the working directory with deploy/ and pom.xml. */
  static Path root() {
    Path p = Path.of("").toAbsolutePath();
    while (p != null && !(Files.isDirectory(p.resolve("deploy")) && Files.exists(p.resolve("pom.xml")))) {
      p = p.getParent();
    }
    assertNotNull(p, "no deploy/ above " + Path.of("").toAbsolutePath());
    return p;
  }

  static Path deploy() {
    return root().resolve("deploy");
  }

  /** Every *.yaml file below {@code dir}, sorted. */
  static List<Path> yamlFiles(Path dir) {
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(f -> f.toString().endsWith(".yaml") || f.toString().endsWith(".yml")).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static List<Doc> read(Path file) {
    try {
      return parse(file, Files.readString(file, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The non-empty documents of a YAML text; each must be a mapping. YAML merge keys are resolved. */
  @SuppressWarnings("unchecked")
  static List<Doc> parse(Path file, String text) {
    Yaml yaml = new Yaml(new SafeConstructor(new LoaderOptions()));
    List<Doc> docs = new ArrayList<>();
    int i = 0;
    for (Object o : yaml.loadAll(text)) {
      if (o == null) {
        continue;
      }
      if (!(o instanceof Map<?, ?> m)) {
        fail(file + " document " + i + " is not a mapping: " + o);
        return docs;
      }
      docs.add(new Doc(file, i++, (Map<String, Object>) m));
    }
    return docs;
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> map(Map<String, Object> m, String key) {
    Object v = m.get(key);
    if (v == null) {
      return new LinkedHashMap<>();
    }
    assertTrue(v instanceof Map, key + " is not a mapping: " + v);
    return (Map<String, Object>) v;
  }

  @SuppressWarnings("unchecked")
  static List<Object> list(Map<String, Object> m, String key) {
    Object v = m.get(key);
    if (v == null) {
      return new ArrayList<>();
    }
    assertTrue(v instanceof List, key + " is not a list: " + v);
    return (List<Object>) v;
  }

  /** The value at a dotted path of mappings (no lists), or null. */
  @SuppressWarnings("unchecked")
  static Object at(Map<String, Object> m, String path) {
    Object cur = m;
    for (String k : path.split("\\.")) {
      if (!(cur instanceof Map<?, ?> mm)) {
        return null;
      }
      cur = ((Map<String, Object>) mm).get(k);
    }
    return cur;
  }

  @SuppressWarnings("unchecked")
  static List<Map<String, Object>> maps(Object list) {
    List<Map<String, Object>> out = new ArrayList<>();
    if (list instanceof List<?> l) {
      for (Object o : l) {
        assertTrue(o instanceof Map, "not a mapping: " + o);
        out.add((Map<String, Object>) o);
      }
    }
    return out;
  }

  static List<String> strings(Object list) {
    List<String> out = new ArrayList<>();
    if (list instanceof List<?> l) {
      for (Object o : l) {
        out.add(String.valueOf(o));
      }
    }
    return out;
  }
}
