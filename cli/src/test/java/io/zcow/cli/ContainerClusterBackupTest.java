package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.github.dockerjava.api.model.Capability;
import io.zcow.testkit.Containers;
import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.testcontainers.containers.BindMode;
import org.testcontainers.containers.ContainerLaunchException;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.Network;
import org.testcontainers.containers.startupcheck.OneShotStartupCheckStrategy;
import org.testcontainers.kafka.KafkaContainer;
import org.testcontainers.lifecycle.Startables;
import org.testcontainers.utility.DockerImageName;

/**
 * What only containers show: zcow's roles in zcow's own image (localhost/zcow, this checkout's jar
 * on the local JRE image, user 10001), each in a container of its own beside the Kafka and
 * ZooKeeper containers, finding each other by name on a container network, with the source
 * mounted read-only and the target root a volume, each role locked down as the deployments run
 * it. A backup through them must read back identical to the source and pass qemu-img check.
 * Skipped without an engine or the images of deploy/images/build.sh; failed instead under CI=true.
 */
class ContainerClusterBackupTest {
  private static final long SOURCE_SIZE = 40L << 20;
  private static final String KAFKA = "kafka:19092";
  private static final String ZOOKEEPER = "zookeeper:2181";
  private static final String KEY = "/etc/zcow/auth/key";
  /** The image's user (deploy/docker/Dockerfile). */
  private static final int IMAGE_UID = 10001;

  @Test
  void rolesInTheirOwnImageBackUpADiskThroughTheKafkaContainer(@TempDir Path dir) throws Exception {
    QemuImg.assumeAvailable();
    DockerImageName zcow = Containers.zcowImage();
    // The containers' user reads the sources and the key and writes the images.
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path sources = Files.createDirectory(dir.resolve("sources"));
    Path images = Files.createDirectory(dir.resolve("images"));
    Files.setPosixFilePermissions(images, PosixFilePermissions.fromString("rwxrwxrwx"));
    Path source = Disks.mixed(sources.resolve("disk.raw"), SOURCE_SIZE, 41);
    Path key = dir.resolve("auth.key");
    byte[] secret = new byte[32];
    new Random(7).nextBytes(secret);
    Files.write(key, secret);

    List<GenericContainer<?>> started = new ArrayList<>();
    try (Network network = Network.newNetwork();
        KafkaContainer kafka =
            Containers.kafka().withNetwork(network).withNetworkAliases("kafka").withListener(KAFKA);
        GenericContainer<?> zookeeper =
            Containers.zookeeper().withNetwork(network).withNetworkAliases("zookeeper");
        GenericContainer<?> writer =
            role(zcow, network, key, "writer", "--kafka", KAFKA, "--zookeeper", ZOOKEEPER,
                    "--target-root", "/var/lib/zcow/images", "--auth-key-file", KEY)
                .withFileSystemBind(images.toString(), "/var/lib/zcow/images", BindMode.READ_WRITE);
        GenericContainer<?> worker =
            role(zcow, network, key, "worker", "--kafka", KAFKA, "--source-allow", "/sources",
                    "--auth-key-file", KEY)
                .withFileSystemBind(sources.toString(), "/sources", BindMode.READ_ONLY);
        GenericContainer<?> backup =
            role(zcow, network, key, "backup", "--kafka", KAFKA, "--zookeeper", ZOOKEEPER,
                    "--job-id", "containers-1", "--range-size", "4m", "--progress", "plain",
                    "--connect-timeout", "60", "--auth-key-file", KEY, "/sources/disk.raw", "disk.qcow2")
                .withFileSystemBind(sources.toString(), "/sources", BindMode.READ_ONLY)
                // start() returns when the backup has exited, and throws unless it exited 0.
                .withStartupCheckStrategy(
                    new OneShotStartupCheckStrategy().withTimeout(Duration.ofMinutes(3)))) {
      started.addAll(List.of(kafka, zookeeper));
      Startables.deepStart(kafka, zookeeper).join();
      started.addAll(List.of(writer, worker));
      Startables.deepStart(writer, worker).join();
      started.add(backup);
      try {
        backup.start();
      } catch (ContainerLaunchException e) {
        fail("the backup container did not exit 0: " + e.getMessage() + logs(started), e);
      }
      String log = backup.getLogs();
      System.out.println("backup container: "
          + log.lines().filter(l -> l.contains("job containers-1")).reduce((a, b) -> b).orElse(log));

      Path image = images.resolve("disk.qcow2");
      if (!Files.exists(image)) {
        fail("no image at " + image + logs(started));
      }
      QemuImg.assertClean(image);
      QemuImg.assertIdentical(source, image);
      assertEquals(IMAGE_UID, Files.getAttribute(image, "unix:uid"), "written by the image's user");
    }
  }

  @Test
  void theImageCarriesManPagesAndBashCompletionMadeFromTheCommandLine() {
    DockerImageName zcow = Containers.zcowImage();
    try (GenericContainer<?> shell = new GenericContainer<>(zcow)
        .withCreateContainerCmdModifier(cmd -> cmd.withEntrypoint("/bin/sh"))
        .withCommand("-c", "cat /usr/share/man/man1/zcow-backup.1; ls /usr/share/man/man1;"
            + " grep -c _complete_zcow /usr/share/bash-completion/completions/zcow")
        .withStartupCheckStrategy(new OneShotStartupCheckStrategy().withTimeout(Duration.ofSeconds(60)))) {
      shell.start();
      String out = shell.getLogs();
      assertTrue(out.contains(".TH \"ZCOW\\-BACKUP\" \"1\"") && out.contains("checkpoint\\-interval"), tail(out, 40));
      for (String page : List.of("zcow.1", "zcow-convert.1", "zcow-worker.1", "zcow-writer.1", "zcow-status.1")) {
        assertTrue(out.contains(page), page + " in " + tail(out, 40));
      }
      String last = out.strip().lines().reduce((a, b) -> b).orElse("");
      assertTrue(last.matches("[1-9]\\d*"), "the completion script is installed: " + tail(out, 5));
    }
  }

  /**
   * A zcow role: the image's entry point with ARGS, the key mounted where the manifests put it,
   * locked down as compose and Kubernetes run it (read-only root, every capability dropped, no new
   * privileges, /tmp a tmpfs where zstd-jni and JNA unpack their libraries).
   */
  @SuppressWarnings("resource") // closed by the caller's try
  private static GenericContainer<?> role(DockerImageName image, Network network, Path key, String... args) {
    return new GenericContainer<>(image)
        .withNetwork(network)
        .withCommand(args)
        .withTmpFs(Map.of("/tmp", "rw,exec"))
        .withCreateContainerCmdModifier(cmd -> cmd.getHostConfig()
            .withReadonlyRootfs(true)
            .withCapDrop(Capability.ALL)
            .withSecurityOpts(List.of("no-new-privileges:true")))
        .withFileSystemBind(key.toString(), KEY, BindMode.READ_ONLY)
        .withEnv(Main.ENV_LOG_LEVEL, "info")
        .withEnv("JAVA_TOOL_OPTIONS", "-Xmx384m");
  }

  /** The logs of every container started so far, for a failure's message. */
  private static String logs(List<GenericContainer<?>> containers) {
    StringBuilder out = new StringBuilder();
    containers.forEach(c -> {
      String name = String.join(" ", c.getCommandParts());
      try {
        out.append("\n---- ").append(c.getDockerImageName()).append(' ').append(name).append(" ----\n")
            .append(tail(c.getLogs(), 60));
      } catch (RuntimeException e) {
        out.append("\n---- ").append(name).append(": no logs (").append(e.getMessage()).append(')');
      }
    });
    return out.toString();
  }

  private static String tail(String text, int lines) {
    List<String> all = text.lines().toList();
    return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
  }
}
