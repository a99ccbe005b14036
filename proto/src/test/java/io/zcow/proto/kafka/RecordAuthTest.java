package io.zcow.proto.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.record.TimestampType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RecordAuthTest {
  private static final byte[] KEY = bytes(32, 1);
  private static final byte[] OTHER_KEY = bytes(32, 2);
  private final RecordAuth auth = RecordAuth.withKey(KEY);

  @TempDir Path dir;

  private static byte[] bytes(int n, int seed) {
    byte[] b = new byte[n];
    for (int i = 0; i < n; i++) {
      b[i] = (byte) (seed * 31 + i * 7);
    }
    return b;
  }

  /** The record as a consumer would see it. */
  private static ConsumerRecord<String, byte[]> consumed(String topic, String key, byte[] value, Headers headers) {
    return new ConsumerRecord<>(topic, 0, 42L, 0L, TimestampType.CREATE_TIME, 0, 0, key, value, headers,
        Optional.empty());
  }

  private static ConsumerRecord<String, byte[]> consumed(ProducerRecord<String, byte[]> p) {
    return consumed(p.topic(), p.key(), p.value(), new RecordHeaders(p.headers().toArray()));
  }

  @Test
  void aSignedRecordVerifies() {
    ProducerRecord<String, byte[]> p = auth.record("zcow.chunks.g", "job/3", bytes(1000, 5));
    assertEquals(RecordAuth.Status.OK, auth.verify(consumed(p)).status());
    assertTrue(RecordAuth.withKey(KEY.clone()).verify(consumed(p)).ok(), "another instance with the same key agrees");
  }

  @Test
  void changingTheTopicTheKeyTheValueOrTheHeaderIsRefused() {
    ProducerRecord<String, byte[]> p = auth.record("zcow.chunks.g", "job/3", bytes(1000, 5));
    Headers h = p.headers();
    byte[] value = p.value();

    assertEquals(RecordAuth.Status.BAD, auth.verify(consumed("zcow.tasks", "job/3", value, h)).status(), "topic");
    assertEquals(RecordAuth.Status.BAD, auth.verify(consumed("zcow.chunks.g", "job/4", value, h)).status(), "key");
    assertEquals(RecordAuth.Status.BAD, auth.verify(consumed("zcow.chunks.g", null, value, h)).status(), "no key");
    byte[] flipped = value.clone();
    flipped[500] ^= 1;
    assertEquals(RecordAuth.Status.BAD, auth.verify(consumed("zcow.chunks.g", "job/3", flipped, h)).status(), "value");
    byte[] truncated = Arrays.copyOf(value, 999);
    assertEquals(RecordAuth.Status.BAD, auth.verify(consumed("zcow.chunks.g", "job/3", truncated, h)).status(),
        "truncated value");
    assertEquals(RecordAuth.Status.BAD, auth.verify(consumed("zcow.chunks.g", "job/3", null, h)).status(), "tombstone");

    byte[] header = h.lastHeader(RecordAuth.HEADER).value();
    for (int i : new int[] {0, RecordAuth.KEY_ID_BYTES, header.length - 1}) {
      byte[] bad = header.clone();
      bad[i] ^= 0x10;
      RecordHeaders tampered = new RecordHeaders();
      tampered.add(RecordAuth.HEADER, bad);
      assertEquals(RecordAuth.Status.BAD, auth.verify(consumed("zcow.chunks.g", "job/3", value, tampered)).status(),
          "header byte " + i);
    }
    RecordHeaders shortHeader = new RecordHeaders();
    shortHeader.add(RecordAuth.HEADER, Arrays.copyOf(header, 20));
    assertEquals(RecordAuth.Status.BAD, auth.verify(consumed("zcow.chunks.g", "job/3", value, shortHeader)).status());
  }

  @Test
  void bytesCannotMoveBetweenTopicKeyAndValue() {
    ProducerRecord<String, byte[]> p = auth.record("ab", "c", "d".getBytes(StandardCharsets.UTF_8));
    Headers h = p.headers();
    assertFalse(auth.verify(consumed("a", "bc", "d".getBytes(StandardCharsets.UTF_8), h)).ok());
    assertFalse(auth.verify(consumed("ab", "", "cd".getBytes(StandardCharsets.UTF_8), h)).ok());
    assertFalse(auth.verify(consumed("ab", "cd", new byte[0], h)).ok());
  }

  @Test
  void anUnsignedRecordIsMissingItsMac() {
    RecordAuth.Verdict v = auth.verify(consumed("zcow.tasks", "job/1", bytes(10, 1), new RecordHeaders()));
    assertEquals(RecordAuth.Status.MISSING, v.status());
    assertTrue(v.reason().contains("no MAC"), v.reason());
  }

  @Test
  void aRecordSignedWithAnotherKeySaysSo() {
    RecordAuth other = RecordAuth.withKey(OTHER_KEY);
    assertNotEquals(auth.keyId(), other.keyId());
    ProducerRecord<String, byte[]> p = other.record("zcow.tasks", "job/1", bytes(10, 1));
    RecordAuth.Verdict v = auth.verify(consumed(p));
    assertEquals(RecordAuth.Status.BAD, v.status());
    assertTrue(v.reason().contains("bad MAC") && v.reason().contains(other.keyId()) && v.reason().contains(auth.keyId()),
        v.reason());
  }

  @Test
  void signingTwiceLeavesOneHeaderAndResigningForAnotherTopicMovesNothing() {
    ProducerRecord<String, byte[]> p = auth.record("t", "k", bytes(10, 3));
    auth.sign(p);
    assertEquals(1, p.headers().toArray().length);
  }

  @Test
  void withoutAKeyNothingIsSignedAndEverythingIsAccepted() {
    ProducerRecord<String, byte[]> p = RecordAuth.NONE.record("t", "k", bytes(10, 3));
    assertEquals(0, p.headers().toArray().length);
    assertTrue(RecordAuth.NONE.verify(consumed(p)).ok());
    ProducerRecord<String, byte[]> signed = auth.record("t", "k", bytes(10, 3));
    assertTrue(RecordAuth.NONE.verify(consumed("t", "k", new byte[] {9}, signed.headers())).ok(),
        "a header is ignored without a key");
    assertFalse(RecordAuth.NONE.enabled());
    assertEquals("none", RecordAuth.NONE.keyId());
  }

  @Test
  void signsAndVerifiesFromManyThreads() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<Boolean>> results = new ArrayList<>();
      for (int t = 0; t < 8; t++) {
        int seed = t;
        results.add(pool.submit(() -> {
          for (int i = 0; i < 200; i++) {
            byte[] v = bytes(100 + i, seed);
            ProducerRecord<String, byte[]> p = auth.record("t" + seed, "k" + i, v);
            if (!auth.verify(consumed(p)).ok()) {
              return false;
            }
          }
          return true;
        }));
      }
      for (Future<Boolean> f : results) {
        assertTrue(f.get());
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void loadsAKeyFileAndRefusesMissingEmptyShortAndHugeOnes() throws Exception {
    Path good = Files.write(dir.resolve("key"), KEY);
    RecordAuth loaded = RecordAuth.fromFile(good);
    assertEquals(auth.keyId(), loaded.keyId());
    assertTrue(loaded.verify(consumed(auth.record("t", "k", bytes(5, 5)))).ok());
    assertSame(RecordAuth.NONE, RecordAuth.fromFile(null));

    assertTrue(assertThrows(BadInputException.class, () -> RecordAuth.fromFile(dir.resolve("missing")))
        .getMessage().contains("does not exist"));
    Path empty = Files.write(dir.resolve("empty"), new byte[0]);
    assertTrue(assertThrows(BadInputException.class, () -> RecordAuth.fromFile(empty)).getMessage().contains("is empty"));
    Path shortKey = Files.write(dir.resolve("short"), "secret\n".getBytes(StandardCharsets.US_ASCII));
    assertTrue(assertThrows(BadInputException.class, () -> RecordAuth.fromFile(shortKey)).getMessage()
        .contains("at least 32"));
    Path huge = Files.write(dir.resolve("huge"), new byte[RecordAuth.MAX_KEY_BYTES + 1]);
    assertTrue(assertThrows(BadInputException.class, () -> RecordAuth.fromFile(huge)).getMessage()
        .contains("not a key file"));
    assertTrue(assertThrows(BadInputException.class, () -> RecordAuth.fromFile(dir)).getMessage()
        .contains("--auth-key-file"));
    assertThrows(IllegalArgumentException.class, () -> RecordAuth.withKey(new byte[31]));
  }

  @Test
  void neverPrintsTheKey() {
    String s = auth.toString() + KafkaSettings.of("h:1").withAuth(auth);
    assertFalse(s.contains(Arrays.toString(KEY)), s);
    assertTrue(s.contains(auth.keyId()), s);
  }

  @Test
  void reportLimiterLetsOneThroughPerIntervalAndCountsTheRest() {
    ReportLimiter l = new ReportLimiter(1000);
    assertEquals(0, l.tryReport(5000));
    assertEquals(-1, l.tryReport(5001));
    assertEquals(-1, l.tryReport(5999));
    assertEquals(2, l.tryReport(6000));
    assertEquals(0, l.tryReport(7000));
  }
}
