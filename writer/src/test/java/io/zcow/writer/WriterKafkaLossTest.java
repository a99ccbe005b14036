package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.JobEvent;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import io.zcow.testkit.EmbeddedZooKeeper;
import io.zcow.testkit.EmbeddedZooKeeperExtension;
import io.zcow.testkit.QemuImg;
import io.zcow.testkit.TcpProxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A leader cut off from Kafka while ZooKeeper answers, on a real broker and a real ZooKeeper: its
 * Kafka clients go through a {@link TcpProxy} that refuses every connection, so it is elected but
 * can never read. It must give up leadership within its bound, the standby (which reaches the
 * broker) must finish the job identical, and the cut-off writer must stay a candidate behind it.
 * (The shared test broker advertises its own address, so a cut after bootstrap would cut nothing;
 * the fault suite's partition rows cut running leaders on brokers that advertise the proxy.)
 */
@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class WriterKafkaLossTest {
  static final int CS = 65536;
  static final long RANGE = 4L << 20;
  static final Duration BOUND = Duration.ofSeconds(3);

  @BeforeAll
  static void qemu() {
    QemuImg.assumeAvailable();
  }

  @Test
  void aLeaderThatCannotReachKafkaGivesUpLeadershipAndTheStandbyFinishes(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 12L << 20, 41);
    String broker = kafka.bootstrapServers().split(",")[0];
    int colon = broker.lastIndexOf(':');
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of());
        TcpProxy proxy = TcpProxy.start(broker.substring(0, colon), Integer.parseInt(broker.substring(colon + 1)))) {
      proxy.cut(TcpProxy.Mode.REFUSE);
      Writer cutOff = h.startWriter(h.config(proxy.address()).toBuilder().kafkaLossTimeout(BOUND).build());
      assertTrue(cutOff.awaitLeadership(Duration.ofSeconds(30)), "elected: ZooKeeper answers");
      long led = System.nanoTime();
      Writer standby = h.startWriter(h.config().toBuilder().kafkaLossTimeout(BOUND).build());
      JobSpec spec = h.spec("kafka-loss", disk, CS, RANGE, "loss.qcow2");
      h.publish(spec);
      assertTrue(standby.awaitLeadership(Duration.ofSeconds(60)), "the standby took over");
      Duration handedOver = Duration.ofNanos(System.nanoTime() - led);
      assertTrue(cutOff.metrics().kafkaGiveUps() >= 1, "the cut-off leader gave up leadership");
      assertTrue(proxy.arrivedWhileCut() > 0, "the cut-off leader did try Kafka, through the proxy");
      // Bound, plus the call that found out (at most the bound), the rejoin pause and election slack.
      Duration limit = BOUND.multipliedBy(2).plus(Writer.REJOIN_PAUSE).plusSeconds(5);
      assertTrue(handedOver.compareTo(limit) < 0, "handed over in " + handedOver + ", within " + limit);
      for (long r = 0; r < h.ranges(spec); r++) {
        h.sendRange(spec, disk, r);
      }
      JobEvent done = h.awaitState("kafka-loss", JobState.JOB_STATE_DONE, Duration.ofSeconds(90));
      assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      assertEquals(Writer.Role.STANDBY, cutOff.role(), "the cut-off writer rejoined behind the new leader");
      assertTrue(standby.epoch() > cutOff.epoch());
      Path image = root.resolve("loss.qcow2");
      QemuImg.assertClean(image);
      QemuImg.assertIdentical(disk, image);
    }
  }
}
