package io.zcow.proto.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A key file with the current and the previous key: a cluster moves from key A to key B role by role. */
class KeyRotationTest {
  @TempDir Path dir;

  private static byte[] key(int fill) {
    byte[] k = new byte[32];
    Arrays.fill(k, (byte) fill);
    return k;
  }

  private Path file(String name, String text) throws Exception {
    return Files.writeString(dir.resolve(name), text);
  }

  private static boolean accepts(RecordAuth verifier, RecordAuth signer) {
    ProducerRecord<String, byte[]> r = signer.record("zcow.tasks", "job/1", "task".getBytes(StandardCharsets.UTF_8));
    return verifier.verify(r.topic(), r.key(), r.value(), r.headers()).ok();
  }

  @Test
  void everyStepOfARotationAcceptsTheRecordsOfTheStepsBesideIt() throws Exception {
    String a = HexFormat.of().formatHex(key(1));
    String b = HexFormat.of().formatHex(key(2));
    // The documented steps: A; A accepting B; B accepting A; B. Roles move one step at a time.
    List<RecordAuth> steps = List.of(
        RecordAuth.fromFile(Files.write(dir.resolve("a.key"), key(1))),
        RecordAuth.fromFile(file("ab", RecordAuth.KEYS_FORMAT + "\ncurrent " + a + "\nprevious " + b + "\n")),
        RecordAuth.fromFile(file("ba", RecordAuth.KEYS_FORMAT + "\n# rotating to B\ncurrent " + b + "\nprevious " + a)),
        RecordAuth.fromFile(file("b", RecordAuth.KEYS_FORMAT + "\ncurrent " + b + "\n")));
    for (int i = 0; i < steps.size(); i++) {
      for (int j = Math.max(0, i - 1); j <= Math.min(steps.size() - 1, i + 1); j++) {
        assertTrue(accepts(steps.get(i), steps.get(j)), "step " + i + " accepts step " + j);
      }
    }
    assertEquals(steps.get(0).keyId(), steps.get(1).keyId(), "step 1 still signs with A");
    assertEquals(steps.get(3).keyId(), steps.get(2).keyId(), "step 2 signs with B");
    assertTrue(!accepts(steps.get(3), steps.get(0)) && !accepts(steps.get(0), steps.get(3)),
        "A alone and B alone do not accept each other");
  }

  @Test
  void aMalformedKeysFileIsRefusedNamingTheLine() throws Exception {
    String a = HexFormat.of().formatHex(key(1));
    for (String[] bad : new String[][] {
        {"\nprevious " + a, "no 'current HEX'"},
        {"\ncurrent " + a + "\ncurrent " + a, "line 3: a second current"},
        {"\ncurrent zz", "line 2: the key is not hex"},
        {"\ncurrent 0011", "line 2: a key needs at least 32"},
        {"\nnext " + a, "line 2 is not"}}) {
      Path f = file("bad", RecordAuth.KEYS_FORMAT + bad[0] + "\n");
      BadInputException e = assertThrows(BadInputException.class, () -> RecordAuth.fromFile(f));
      assertTrue(e.getMessage().contains(bad[1]), e.getMessage());
    }
  }
}
