package io.zcow.cli.faults;

import static io.zcow.cli.Forgeries.batch;
import static io.zcow.cli.Forgeries.data;
import static io.zcow.cli.Forgeries.forgedRangeDone;
import static io.zcow.cli.Forgeries.garbage;
import static io.zcow.cli.Forgeries.task;
import static io.zcow.cli.Forgeries.validChecksumOverWrongData;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.EventKind;
import io.zcow.proto.Topics;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import io.zcow.writer.WriterConfig;
import java.io.IOException;
import java.io.InputStream;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fault scenario "hostile producer": every role a process of its own, all with one
 * {@code --auth-key-file}; while the job runs, a producer without the key writes garbage and
 * forged records (wrong job, cluster out of range, oversized payload, forged RangeDone, valid entry
 * checksum over wrong data, records signed with another key) into the chunks topic and zcow.tasks. The job
 * must end DONE with an image identical to the source and clean, and the writer and workers must
 * have counted the forgeries as unauthenticated.
 */
class HostileProducerScenarioTest {
  private static final long SOURCE_SIZE = 24L << 20;
  private static final long RANGE_SIZE = 4L << 20;
  private static final int CS = 64 << 10;
  private static final long LAST = SOURCE_SIZE / RANGE_SIZE - 1;
  private static final Duration PATIENCE = Duration.ofSeconds(120);

  @TempDir Path dir;

  @Test
  void forgedRecordsDuringAJobAreRefusedByEveryProcessAndTheImageIsIdentical() throws Exception {
    QemuImg.assumeAvailable();
    byte[] key = new byte[32];
    new Random(5).nextBytes(key);
    Path keyFile = Files.write(dir.resolve("cluster.key"), key);
    Files.setPosixFilePermissions(keyFile, PosixFilePermissions.fromString("rw-------"));
    byte[] otherKey = key.clone();
    otherKey[31] ^= 1;
    RecordAuth other = RecordAuth.withKey(otherKey);
    Path source = Disks.random(dir.resolve("source.raw"), SOURCE_SIZE, 3);
    String job = "hostile-mp";
    String k = keyFile.toString();
    int writerPort = freePort();
    int[] workerPorts = {freePort(), freePort()};

    try (LoopbackCluster c = LoopbackCluster.start(dir.resolve("cluster"))) {
      c.startWriter("writer", "--auth-key-file", k, "--metrics-port", Integer.toString(writerPort));
      for (int i = 0; i < 2; i++) {
        // 1 MB/s each: the six 4 MiB ranges take about 12 s, time enough for the forgeries.
        c.startWorker("worker-" + (i + 1), "--max-read-rate", "1", "--auth-key-file", k, "--metrics-port",
            Integer.toString(workerPorts[i]));
      }
      Role backup = c.startBackup("backup", c.backupArgs(source, "hostile.qcow2", job, "--window", "2",
          "--auth-key-file", k));
      c.events().awaitRangesDone(job, 1, PATIENCE);

      String chunks = Topics.chunks(WriterConfig.DEFAULT_GROUP);
      long lastCluster = LAST * (RANGE_SIZE / CS);
      try (KafkaProducer<String, byte[]> p = new KafkaProducer<>(KafkaSettings.of(c.kafka()).producer("hostile"))) {
        send(p, chunks, Wire.rangeKey(job, 1), garbage(1000));
        send(p, chunks, Wire.rangeKey("nope", 0), batch("nope", 0, data(0, new byte[100])));
        send(p, chunks, Wire.rangeKey(job, 0), batch(job, 0, data(1_000_000, new byte[100])));
        send(p, chunks, Wire.rangeKey(job, 0), batch(job, 0, data(0, new byte[CS])));
        send(p, chunks, Wire.rangeKey(job, 2), forgedRangeDone(job, 2, RANGE_SIZE / CS));
        send(p, chunks, Wire.rangeKey(job, LAST), validChecksumOverWrongData(job, LAST, lastCluster, CS));
        p.send(other.record(chunks, Wire.rangeKey(job, LAST), validChecksumOverWrongData(job, LAST, lastCluster, CS)))
            .get(30, TimeUnit.SECONDS);
        send(p, Topics.TASKS, Wire.rangeKey(job, 1), garbage(300));
        send(p, Topics.TASKS, Wire.rangeKey(job, LAST), task(job, LAST, LAST * RANGE_SIZE, RANGE_SIZE));
        p.send(other.record(Topics.TASKS, Wire.rangeKey(job, LAST), task(job, LAST, LAST * RANGE_SIZE, RANGE_SIZE)))
            .get(30, TimeUnit.SECONDS);
      }
      Path image = c.targetRoot().resolve("hostile.qcow2");
      assertFalse(Files.exists(image), "the forgeries were sent while the job ran");

      assertEquals(0, backup.await(PATIENCE), backup.describe());
      long lost = FaultReport.shared().addImage("hostile producer, every role keyed",
          "7 forged chunk records, 3 forged tasks", source, image, null);
      FaultReport.shared().print();
      assertEquals(0, lost, c.logsOfRoles());
      QemuImg.assertClean(image);
      assertTrue(metric(writerPort, "zcow_writer_unauthenticated_records_total") >= 7, c.logsOfRoles());
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      long tasks = 0;
      while (System.nanoTime() < deadline) {
        tasks = metric(workerPorts[0], "zcow_worker_unauthenticated_tasks_total")
            + metric(workerPorts[1], "zcow_worker_unauthenticated_tasks_total");
        if (tasks >= 3) {
          break;
        }
        Thread.sleep(200);
      }
      assertTrue(tasks >= 3, "workers refused " + tasks + " tasks: " + c.logsOfRoles());
      assertTrue(c.events().of(job).stream().anyMatch(e -> e.kind() == EventKind.EVENT_KIND_RECORD_REJECTED
          && e.reason().contains("MAC")), "the writer reported a refusal");
      assertTrue(c.events().of(job).stream().noneMatch(e -> e.kind() == EventKind.EVENT_KIND_RANGE_REQUEUED),
          "no forgery made the writer re-queue a range");
    }
  }

  private static void send(KafkaProducer<String, byte[]> p, String topic, String key, byte[] value) throws Exception {
    p.send(new ProducerRecord<>(topic, key, value)).get(30, TimeUnit.SECONDS);
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /** The sum of every series of {@code name} on a role's /metrics page. */
  private static long metric(int port, String name) throws IOException {
    String text;
    try (InputStream in = URI.create("http://127.0.0.1:" + port + "/metrics").toURL().openStream()) {
      text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    Matcher m = Pattern.compile("(?m)^" + name + "(?:\\{[^}]*\\})? ([0-9.eE+]+)$").matcher(text);
    long sum = 0;
    while (m.find()) {
      sum += (long) Double.parseDouble(m.group(1));
    }
    return sum;
  }
}
