package io.zcow.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The record key of the test clusters: cluster roles refuse to start without one, so the tests'
 * helpers that start roles ({@link CliRun}, {@code LoopbackCluster}) add this one to every role
 * whose command line names no key and not {@code --insecure}, the secure path operators run.
 */
public final class ClusterKeys {
  private static final Set<String> ROLES = Set.of("writer", "worker", "status", "cancel");
  private static Path file;

  private ClusterKeys() {}

  /** A key file of this JVM's test clusters (mode 0600), made once. */
  public static synchronized Path file() {
    if (file == null) {
      try {
        file = Files.createTempFile("zcow-test-", ".key",
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.write(file, EmbeddedKey.random());
        file.toFile().deleteOnExit();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return file;
  }

  /** The key of {@link #file()}, for roles a test runs in-process. */
  public static io.zcow.proto.kafka.RecordAuth auth() {
    return io.zcow.proto.kafka.RecordAuth.fromFile(file());
  }

  /** Client settings for the cluster at {@code bootstrap}, signing with {@link #auth()}. */
  public static io.zcow.proto.kafka.KafkaSettings settings(String bootstrap) {
    return io.zcow.proto.kafka.KafkaSettings.of(bootstrap).withAuth(auth());
  }

  /** {@code args} with {@code --auth-key-file} of {@link #file()} when they start a cluster role without a key. */
  public static List<String> secured(List<String> args) {
    boolean role = !args.isEmpty() && (ROLES.contains(args.get(0))
        || args.get(0).equals("backup") && args.contains("--kafka"));
    if (!role || args.contains("--auth-key-file") || args.contains("--insecure")) {
      return args;
    }
    List<String> out = new ArrayList<>(args);
    out.add(1, file().toString());
    out.add(1, "--auth-key-file");
    return out;
  }
}
