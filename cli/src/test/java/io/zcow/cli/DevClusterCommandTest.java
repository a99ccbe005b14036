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
