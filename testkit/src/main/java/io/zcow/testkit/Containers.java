package io.zcow.testkit;

import com.github.dockerjava.api.exception.NotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Assumptions;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.kafka.KafkaContainer;
import org.testcontainers.utility.DockerImageName;

/**
 * The container engine and the images that {@code deploy/images/build.sh} builds on this host
 * (tagged {@code localhost/zcow-…}; no registry is ever asked), for Testcontainers tests.
 *
 * <p>Like {@link QemuImg}, every method skips the calling test when the engine or an image is
 * missing, and fails it instead when the environment variable {@code CI} is {@code true}: CI
 * installs an engine and builds the images first, so a missing one there is a broken build, not a
 * reason to skip. Testcontainers itself needs {@code TESTCONTAINERS_RYUK_DISABLED=true} and
 * {@code TESTCONTAINERS_CHECKS_DISABLE=true} (without a registry there is neither the ryuk image nor
 * the tiny image its checks run, and a bind mount would wait for that pull) and {@code
 * TESTCONTAINERS_HOST_OVERRIDE=localhost}; the parent pom gives all three to every test JVM, and
 * {@code DOCKER_HOST} passes through for podman.
 */
public final class Containers {

  /** Where the images come from; said in every skip or failure. */
  private static final String BUILD_HINT = "run deploy/images/build.sh (see deploy/README.md)";

  private static final Properties IMAGES = load();

  private Containers() {}

  /** The broker image: Kafka at the tests' kafka.version, from Maven Central jars. */
  public static DockerImageName kafkaImage() {
    return require(IMAGES.getProperty("kafka")).asCompatibleSubstituteFor("apache/kafka");
  }

  /** The ZooKeeper image, at the version Curator brings. */
  public static DockerImageName zookeeperImage() {
    return require(IMAGES.getProperty("zookeeper"));
  }

  /** zcow's own image, built from this checkout's jar by deploy/images/build.sh. */
  public static DockerImageName zcowImage() {
    return require(IMAGES.getProperty("zcow"));
  }

  /**
   * A broker (not started) on {@link #kafkaImage()} with the settings of the embedded test broker
   * ({@link EmbeddedKafka#brokerConfig()}), so tests see the same broker either way.
   */
  public static KafkaContainer kafka() {
    return new KafkaContainer(kafkaImage()).withEnv(kafkaEnvironment(EmbeddedKafka.brokerConfig()));
  }

  /** A ZooKeeper server (not started) on port 2181, ready when it accepts connections. */
  @SuppressWarnings("resource") // the caller starts and stops it
  public static GenericContainer<?> zookeeper() {
    return new GenericContainer<>(zookeeperImage())
        .withExposedPorts(2181)
        .waitingFor(Wait.forLogMessage(".*binding to port.*\\n", 1));
  }

  /**
   * Broker settings as the image's entry point reads them: {@code foo.bar_baz} becomes
   * {@code KAFKA_FOO_BAR__BAZ} ("." is "_", "_" is "__", "-" is "___").
   */
  public static Map<String, String> kafkaEnvironment(Map<String, String> brokerConfig) {
    Map<String, String> env = new LinkedHashMap<>();
    brokerConfig.forEach(
        (key, value) ->
            env.put(
                "KAFKA_"
                    + key.toUpperCase(Locale.ROOT)
                        .replace("_", "__")
                        .replace("-", "___")
                        .replace('.', '_'),
                value));
    return env;
  }

  /**
   * Skips the calling test when no container engine answers, or fails it when {@code CI=true}.
   */
  public static void requireEngine() {
    if (!DockerClientFactory.instance().isDockerAvailable()) {
      unavailable(
          "no container engine answers (DOCKER_HOST="
              + System.getenv("DOCKER_HOST")
              + "): start dockerd, or podman's service with DOCKER_HOST at its socket");
    }
  }

  /** The image, after checking the engine has it; it is never pulled. */
  private static DockerImageName require(String image) {
    requireEngine();
    try {
      DockerClientFactory.instance().client().inspectImageCmd(image).exec();
    } catch (NotFoundException e) {
      unavailable("the image " + image + " is missing: " + BUILD_HINT);
    }
    return DockerImageName.parse(image);
  }

  private static void unavailable(String message) {
    if (Tools.onCi()) {
      throw new AssertionError(message + "; CI=true, so this is a failure, not a skip");
    }
    Assumptions.assumeTrue(false, message + "; test skipped");
  }

  private static Properties load() {
    Properties properties = new Properties();
    try (InputStream in = Containers.class.getResourceAsStream("/zcow-images.properties")) {
      if (in == null) {
        throw new IllegalStateException("zcow-images.properties missing: build with Maven");
      }
      properties.load(in);
    } catch (IOException e) {
      throw new IllegalStateException("could not read zcow-images.properties", e);
    }
    return properties;
  }
}
