package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.coordinator.TopicSetup;
import io.zcow.proto.JobState;
import io.zcow.proto.Topics;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.testkit.Disks;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import io.zcow.testkit.QemuImg;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** {@code --auth-key-file} on every command that talks to the cluster. */
@ExtendWith(EmbeddedKafkaExtension.class)
class AuthKeyFileTest {
  private static final long MIB = 1 << 20;

  @TempDir Path dir;

  private Path key(String name, int seed) throws Exception {
    byte[] k = new byte[32];
    new Random(seed).nextBytes(k);
    return Files.write(dir.resolve(name), k);
  }

  @Test
  void everyCommandRefusesAMissingEmptyOrShortKeyFileWithOneLine() throws Exception {
    Path src = Disks.random(dir.resolve("src.raw"), MIB, 1);
    Path target = dir.resolve("out.qcow2");
    Path missing = dir.resolve("missing.key");
    Path empty = Files.createFile(dir.resolve("empty.key"));
    Path shortKey = Files.writeString(dir.resolve("short.key"), "secret\n");
    List<List<String>> commands = List.of(
        List.of("worker", "--kafka", "h:9092"),
        List.of("writer", "--kafka", "h:9092", "--zookeeper", "h:2181", "--target-root", dir.toString()),
        List.of("status", "--kafka", "h:9092"),
        List.of("cancel", "--kafka", "h:9092", "job-1"),
        List.of("backup", "--kafka", "h:9092", "--zookeeper", "h:2181", src.toString(), "out.qcow2"),
        List.of("backup", src.toString(), target.toString()));
    for (List<String> command : commands) {
      for (Object[] bad : new Object[][] {{missing, "does not exist"}, {empty, "is empty"}, {shortKey, "at least 32"}}) {
        List<String> args = new ArrayList<>(command);
        args.add(command.get(0).equals("backup") ? 1 : args.size(), "--auth-key-file");
        args.add(command.get(0).equals("backup") ? 2 : args.size(), bad[0].toString());
        CliRun run = CliRun.of(args.toArray(String[]::new));
        assertEquals(2, run.exitCode(), args + ": " + run.err());
        List<String> lines = run.err().strip().lines().filter(l -> l.startsWith("zcow: ")).toList();
        assertEquals(1, lines.size(), args + ": " + run.err());
        assertTrue(lines.get(0).contains("--auth-key-file") && lines.get(0).contains((String) bad[1]),
            args + ": " + lines.get(0));
      }
    }
    assertFalse(Files.exists(target), "nothing was started");
  }

  @Test
  void embeddedBackupWithAKeySignsAndChecksEveryRecordAndWritesTheImage() throws Exception {
    Path src = Disks.mixed(dir.resolve("mixed.raw"), 12 * MIB, 3);
    Path image = dir.resolve("mixed.qcow2");

    CliRun run = CliRun.of("backup", "--auth-key-file", key("k", 1).toString(), "--workers", "2", "--range-size", "2m",
        "--progress", "plain", src.toString(), image.toString());

    assertEquals(0, run.exitCode(), run.err());
    QemuImg.assertClean(image);
    QemuImg.assertIdentical(src, image);
  }

  @Test
  void statusAndCancelSeeOnlySignedRecordsAndCancelSignsItsOwn(EmbeddedKafka kafka) throws Exception {
    TopicSetup.ensure(KafkaSettings.of(kafka.bootstrapServers()), TopicSetup.Plan.defaults("auth-test"));
    Path keyFile = key("k", 2);
    RecordAuth auth = RecordAuth.fromFile(keyFile);
    String signed = kafka.uniqueName("auth-signed");
    String forged = kafka.uniqueName("auth-forged");
    try (KafkaProducer<String, byte[]> p = new KafkaProducer<>(kafka.producerProps())) {
      p.send(auth.record(Topics.JOBS, signed, StatusAndCancelCommandTest.spec(signed, JobState.JOB_STATE_SUBMITTED)
          .toByteArray())).get();
      p.send(new ProducerRecord<>(Topics.JOBS, forged, StatusAndCancelCommandTest.spec(forged,
          JobState.JOB_STATE_SUBMITTED).toByteArray())).get();
    }
    String k = keyFile.toString();

    StatusAndCancelCommandTest.Out all = StatusAndCancelCommandTest.run("status", "--kafka", kafka.bootstrapServers(),
        "--auth-key-file", k);
    assertEquals(0, all.exitCode(), all.err());
    assertTrue(all.out().contains(signed + "  SUBMITTED"), all.out());
    assertFalse(all.out().contains(forged), all.out());
    assertTrue(all.err().contains("without a valid MAC were ignored"), all.err());
    StatusAndCancelCommandTest.Out unknown = StatusAndCancelCommandTest.run("cancel", "--kafka",
        kafka.bootstrapServers(), "--auth-key-file", k, forged);
    assertEquals(2, unknown.exitCode(), "a forged job is no job: " + unknown.err());

    StatusAndCancelCommandTest.Out cancel = StatusAndCancelCommandTest.run("cancel", "--kafka",
        kafka.bootstrapServers(), "--auth-key-file", k, signed);

    assertEquals(0, cancel.exitCode(), cancel.err());
    KafkaSettings keyed = KafkaSettings.of(kafka.bootstrapServers()).withAuth(auth);
    assertEquals(JobState.JOB_STATE_CANCELLED, JobLog.read(keyed).job(signed).orElseThrow().spec().getState(),
        "the cancellation is signed: a role with the key sees it");
  }
}
