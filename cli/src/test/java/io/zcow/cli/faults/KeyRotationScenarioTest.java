package io.zcow.cli.faults;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.kafka.RecordAuth;
import io.zcow.testkit.Disks;
import io.zcow.testkit.QemuImg;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The documented key rotation, done during a job on separate processes: every role starts with key
 * A alone; then, one role after the other (SIGTERM, started again with the next file), each moves
 * to "current A, previous B" and then to "current B, previous A". The coordinator runs at the
 * middle step throughout, so it accepts both ends. Ranges finish after the last role signs with B,
 * and the image is identical.
 */
class KeyRotationScenarioTest {
  private static final Duration TIMEOUT = Duration.ofSeconds(240);

  @TempDir
  Path dir;

  @AfterAll
  static void report() {
    FaultReport.shared().print();
  }

  private Path keyFile(String name, String text) throws Exception {
    Path f = Files.createFile(dir.resolve(name),
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    return Files.writeString(f, text);
  }

  @Test
  void aRotationFromKeyAToKeyBRoleByRoleMidJobEndsIdentical() throws Exception {
    QemuImg.assumeAvailable();
    SecureRandom random = new SecureRandom();
    byte[] keyA = new byte[32];
    byte[] keyB = new byte[32];
    random.nextBytes(keyA);
    random.nextBytes(keyB);
    String a = HexFormat.of().formatHex(keyA);
    String b = HexFormat.of().formatHex(keyB);
    Path onlyA = keyFile("a.keys", RecordAuth.KEYS_FORMAT + "\ncurrent " + a + "\n");
    Path aThenB = keyFile("ab.keys", RecordAuth.KEYS_FORMAT + "\ncurrent " + a + "\nprevious " + b + "\n");
    Path bThenA = keyFile("ba.keys", RecordAuth.KEYS_FORMAT + "\ncurrent " + b + "\nprevious " + a + "\n");
    String keyIdB = RecordAuth.fromFile(bThenA).keyId();
    assertFalse(keyIdB.equals(RecordAuth.fromFile(onlyA).keyId()), "two keys, two key ids");

    try (LoopbackCluster cluster = LoopbackCluster.start(dir)) {
      List<Role> roles = new ArrayList<>();
      roles.add(cluster.startWriter("writer", "--auth-key-file", onlyA.toString()));
      for (int i = 1; i <= 2; i++) {
        // 1 MiB ranges at 0.25 MB/s: 4 s a range, so a SIGTERM'd worker hands its range on soon.
        roles.add(cluster.startWorker("worker-" + i, "--max-read-rate", "0.25", "--auth-key-file", onlyA.toString()));
      }
      String id = "key-rotation-31";
      Path source = Disks.mixed(dir.resolve(id + ".raw"), 24L << 20, 31);
      List<String> args = cluster.backupArgs(source, id + ".qcow2", id, "--auth-key-file", aThenB.toString());
      args.set(args.indexOf("--range-size") + 1, "1m");
      Role backup = cluster.startBackup("backup", args);
      Path image = cluster.targetRoot().resolve(id + ".qcow2");
      cluster.events().awaitRangesDone(id, 1, TIMEOUT);

      for (Path step : List.of(aThenB, bThenA)) {
        for (int i = 0; i < roles.size(); i++) {
          Role old = roles.get(i);
          assertTrue(backup.isAlive(), "the job still runs when " + old.name() + " moves to " + step.getFileName()
              + ": " + backup.describe());
          // 143: the JVM's exit on SIGTERM after its shutdown hooks (137 would be the kill after 60 s).
          assertEquals(143, old.terminate(Duration.ofSeconds(60)), old.describe());
          List<String> again = new ArrayList<>(old.args());
          again.set(again.indexOf("--auth-key-file") + 1, step.toString());
          roles.set(i, cluster.restart(old, again));
        }
      }
      int doneBeforeB = cluster.events().rangesDone(id);
      Instant rolled = Instant.now();
      for (Role r : roles) {
        r.awaitLog(Pattern.compile("key id " + keyIdB + "; key id [0-9a-f]+ is accepted too"),
            Duration.ofSeconds(30));
      }
      // Every writer and worker now signs with B: a range done from here on was read, sent and
      // committed on records signed with B and checked by roles holding both keys.
      cluster.events().awaitProgress(id, rolled, TIMEOUT);
      int code = backup.await(TIMEOUT);
      assertEquals(0, code, backup.describe() + cluster.logsOfRoles());
      int done = cluster.events().rangesDone(id);
      assertTrue(done > doneBeforeB, "ranges were done after every role signed with B (" + doneBeforeB + " of "
          + done + " before)");
      long lost = FaultReport.shared().addImage("key rotation A to B mid-job",
          "writer and 2 workers (key A) moved one by one (SIGTERM, started again) to 'current A, previous B', then "
              + "to 'current B, previous A'; the coordinator at the middle step",
          source, image, null, "exit " + code + "; " + (done - doneBeforeB) + " of " + done
              + " ranges done after every role signed with B");
      QemuImg.assertClean(image);
      QemuImg.assertIdentical(source, image);
      assertEquals(0, lost);
      assertFalse(Files.exists(image.resolveSibling(image.getFileName() + ".part")), "no .part left");
    }
  }
}
