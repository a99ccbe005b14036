package org.apache.kafka.test;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;

/**
 * The part of kafka-clients' test fixtures that {@code kafka-test-common-runtime} calls: temporary
 * files. Kafka 4.4.0 moved these helpers into a {@code test-fixtures} artifact that its test kit
 * uses without declaring, and that the registries this project builds from do not serve; the
 * test kit's {@code KafkaClusterTestKit.Builder.build()} fails with {@code NoClassDefFoundError}
 * without them. Written here from the calls the test kit makes (see {@link TestSslUtils}).
 */
public final class TestUtils {
  private TestUtils() {}

  /** A new empty file in the temporary directory, deleted when the JVM exits. */
  public static File tempFile(String prefix, String suffix) throws IOException {
    File f = Files.createTempFile(prefix, suffix).toFile();
    f.deleteOnExit();
    return f;
  }

  /** A new empty file in the temporary directory, deleted when the JVM exits. */
  public static File tempFile() throws IOException {
    return tempFile("kafka", ".tmp");
  }
}
