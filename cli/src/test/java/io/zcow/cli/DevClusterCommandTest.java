package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class DevClusterCommandTest {
  private static final Pattern ADDRESSES =
      Pattern.compile("kafka: 127\\.0\\.0\\.1:(\\d+)\nzookeeper: 127\\.0\\.0\\.1:(\\d+)\n");

  @Test
  void printsBothAddressesAndStopsBothServersWhenTold() throws Exception {
    ByteArrayOutputStream outBytes = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(outBytes, true, StandardCharsets.UTF_8);
    PrintStream err = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    CountDownLatch stop = new CountDownLatch(1);
    DevClusterCommand command = new DevClusterCommand();
    CompletableFuture<Integer> exit = CompletableFuture.supplyAsync(() -> {
      try {
        return command.serve(out, err, stop);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    });

    Matcher m = ADDRESSES.matcher("");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!exit.isDone() && System.nanoTime() < deadline) {
      m = ADDRESSES.matcher(outBytes.toString(StandardCharsets.UTF_8));
      if (m.matches()) {
        break;
      }
      Thread.sleep(50);
    }
    assertTrue(m.matches(), "stdout: " + outBytes.toString(StandardCharsets.UTF_8));
    int kafkaPort = Integer.parseInt(m.group(1));
    int zkPort = Integer.parseInt(m.group(2));
    assertTrue(accepts(kafkaPort) && accepts(zkPort), "both ports serve");

    stop.countDown();
    assertEquals(Main.EXIT_OK, exit.get(60, TimeUnit.SECONDS));
    assertThrows(ConnectException.class, () -> accepts(kafkaPort));
    assertThrows(ConnectException.class, () -> accepts(zkPort));
  }

  @Test
  void onlyZooKeeperRunsZooKeeperAloneAndComesBackOnItsPortWithItsData(@org.junit.jupiter.api.io.TempDir
      java.nio.file.Path data) throws Exception {
    DevClusterCommand command = new DevClusterCommand();
    command.only = DevClusterCommand.Only.zookeeper;
    command.dataDir = data;
    ByteArrayOutputStream outBytes = new ByteArrayOutputStream();
    CountDownLatch stop = new CountDownLatch(1);
    CompletableFuture<Integer> exit = serveAsync(command, outBytes, stop);
    String out = awaitOutput(outBytes, Pattern.compile("zookeeper: 127\\.0\\.0\\.1:(\\d+)\n"));
    assertTrue(!out.contains("kafka:"), out);
    int zkPort = Integer.parseInt(out.replaceAll("(?s).*:(\\d+)\n", "$1"));
    assertTrue(accepts(zkPort));
    stop.countDown();
    assertEquals(Main.EXIT_OK, exit.get(60, TimeUnit.SECONDS));
    assertThrows(ConnectException.class, () -> accepts(zkPort));
    assertTrue(java.nio.file.Files.isDirectory(data.resolve("zookeeper")), "data kept");

    DevClusterCommand again = new DevClusterCommand();
    again.only = DevClusterCommand.Only.zookeeper;
    again.dataDir = data;
    again.zooKeeperListen = io.zcow.cli.embedded.HostPort.parse("127.0.0.1:" + zkPort);
    ByteArrayOutputStream outAgain = new ByteArrayOutputStream();
    CountDownLatch stopAgain = new CountDownLatch(1);
    CompletableFuture<Integer> exitAgain = serveAsync(again, outAgain, stopAgain);
    awaitOutput(outAgain, Pattern.compile("zookeeper: 127\\.0\\.0\\.1:" + zkPort + "\n"));
    assertTrue(accepts(zkPort));
    stopAgain.countDown();
    assertEquals(Main.EXIT_OK, exitAgain.get(60, TimeUnit.SECONDS));
  }

  @Test
  void unknownOnlyServerIsBadUsage() {
    CliRun run = CliRun.of("dev-cluster", "--only", "redis");
    assertEquals(Main.EXIT_USAGE, run.exitCode());
    assertTrue(run.err().contains("--only"), run.err());
  }

  private static CompletableFuture<Integer> serveAsync(DevClusterCommand command, ByteArrayOutputStream outBytes,
      CountDownLatch stop) {
    PrintStream out = new PrintStream(outBytes, true, StandardCharsets.UTF_8);
    PrintStream err = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    return CompletableFuture.supplyAsync(() -> {
      try {
        return command.serve(out, err, stop);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    });
  }

  private static String awaitOutput(ByteArrayOutputStream outBytes, Pattern whole) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    String s = "";
    while (System.nanoTime() < deadline) {
      s = outBytes.toString(StandardCharsets.UTF_8);
      if (whole.matcher(s).matches()) {
        return s;
      }
      Thread.sleep(50);
    }
    throw new AssertionError("stdout: " + s);
  }

  @Test
  void quorumOptionsThatCannotFormAClusterAreBadUsage() {
    String voters = "1@127.0.0.1:19091,2@127.0.0.1:19092,3@127.0.0.1:19093";
    CliRun both = CliRun.of("dev-cluster", "--quorum-voters", voters, "--cluster-id", "q1Hd3vJzQJ2TSQ5oV1nlbA");
    assertEquals(Main.EXIT_USAGE, both.exitCode());
    assertTrue(both.err().contains("--only kafka"), both.err());
    CliRun stranger = CliRun.of("dev-cluster", "--only", "kafka", "--quorum-voters", voters, "--node-id", "4",
        "--cluster-id", "q1Hd3vJzQJ2TSQ5oV1nlbA");
    assertEquals(Main.EXIT_USAGE, stranger.exitCode());
    assertTrue(stranger.err().contains("nodeId 4 is not one of the voters"), stranger.err());
    CliRun noId = CliRun.of("dev-cluster", "--only", "kafka", "--quorum-voters", voters, "--node-id", "2");
    assertEquals(Main.EXIT_USAGE, noId.exitCode());
    assertTrue(noId.err().contains("clusterId"), noId.err());
    CliRun alone = CliRun.of("dev-cluster", "--only", "kafka", "--node-id", "2");
    assertEquals(Main.EXIT_USAGE, alone.exitCode());
    assertTrue(alone.err().contains("need --quorum-voters"), alone.err());
  }

  @Test
  void malformedListenAddressIsBadUsage() {
    CliRun run = CliRun.of("dev-cluster", "--listen", "no-port-here");
    assertEquals(Main.EXIT_USAGE, run.exitCode());
    assertTrue(run.err().contains("HOST:PORT"), run.err());
  }

  private static boolean accepts(int port) throws IOException {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", port), 2000);
      return true;
    }
  }
}
