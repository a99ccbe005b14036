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
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The gauge worker autoscaling reads: ranges of the leader's open jobs that are not complete. */
@ExtendWith({EmbeddedKafkaExtension.class, EmbeddedZooKeeperExtension.class})
class WriterPendingRangesTest {
  private static final Pattern GAUGE =
      Pattern.compile("(?m)^" + WriterMetrics.RANGES_PENDING + "\\{group=\"[^\"]+\"} ([0-9.E]+)$");

  @Test
  void leaderCountsIncompleteRangesAndStandbyCountsNone(EmbeddedKafka kafka, EmbeddedZooKeeper zk,
      @TempDir Path dir) throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path disk = Disks.mixed(dir.resolve("disk.raw"), 8L << 20, 11);
    try (WriterHarness h = new WriterHarness(kafka, zk, root, Map.of())) {
      Writer leader = h.startWriter(h.config());
      assertTrue(leader.awaitLeadership(Duration.ofSeconds(30)));
      Writer standby = h.startWriter(h.config());
      JobSpec spec = h.spec("pending", disk, 65536, 1L << 20, "pending.qcow2");
      assertEquals(8, h.ranges(spec));
      h.publish(spec);
      h.submitTasks(spec);
      awaitGauge(leader, 8);

      for (long r = 0; r < 3; r++) {
        h.sendRange(spec, disk, r);
      }
      awaitGauge(leader, 5);
      assertEquals(0, gauge(standby));

      for (long r = 3; r < 8; r++) {
        h.sendRange(spec, disk, r);
      }
      JobEvent done = h.awaitState("pending", JobState.JOB_STATE_DONE, Duration.ofSeconds(60));
      assertEquals(JobState.JOB_STATE_DONE, done.getState(), done.getReason());
      awaitGauge(leader, 0);
      assertEquals(0, gauge(standby));
    }
  }

  private static void awaitGauge(Writer w, long want) {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    long seen = gauge(w);
    while (seen != want && System.nanoTime() < deadline) {
      WriterHarness.sleep(100);
      seen = gauge(w);
    }
    assertEquals(want, seen, w.metrics().scrape());
  }

  private static long gauge(Writer w) {
    String scrape = w.metrics().scrape();
    Matcher m = GAUGE.matcher(scrape);
    assertTrue(m.find(), scrape);
    return (long) Double.parseDouble(m.group(1));
  }
}
