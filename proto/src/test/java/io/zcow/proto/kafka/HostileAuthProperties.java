package io.zcow.proto.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.testkit.HostileBytes;
import io.zcow.testkit.Tries;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Record headers and key files as an attacker or a slip of the operator could make them. {@link
 * RecordAuth#verify} answers with a verdict, never an exception, and OK only for the record as
 * signed; {@link RecordAuth#fromFile} answers with a key or a {@link BadInputException}.
 */
class HostileAuthProperties {
  private static final byte[] KEY = "0123456789abcdef0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] OTHER = "fedcba9876543210fedcba9876543210".getBytes(StandardCharsets.US_ASCII);
  private static final RecordAuth AUTH = RecordAuth.withKeys(KEY, OTHER);

  @TempDir Path dir;

  @Test
  void arbitraryHeadersAreRefusedWithAVerdict() {
    Tries.run(1000, g -> {
      RecordHeaders headers = new RecordHeaders();
      for (int i = g.between(0, 3); i > 0; i--) {
        headers.add("x", g.bytes(40));
      }
      headers.add(RecordAuth.HEADER, g.chance(0.1) ? null : g.bytes(80));
      RecordAuth.Verdict v = AUTH.verify("t", "job/1", new byte[] {1, 2, 3}, headers);
      assertNotEquals(RecordAuth.Status.OK, v.status());
      assertFalse(v.reason().isBlank());
    });
  }

  @Test
  void aSignedRecordChangedAnywhereIsBad() {
    Tries.run(500, g -> {
      byte[] value = g.bytes(200);
      long seed = g.anyLong();
      ProducerRecord<String, byte[]> rec = AUTH.sign(new ProducerRecord<>("chunks", "job/7", value));
      byte[] mac = rec.headers().lastHeader(RecordAuth.HEADER).value();
      String key = rec.key();
      byte[] v = value;
      switch (g.oneOf(3)) {
        case 0 -> mac = HostileBytes.mutate(mac, seed);
        case 1 -> v = HostileBytes.mutate(value, seed);
        default -> key = new String(HostileBytes.mutate(key.getBytes(StandardCharsets.UTF_8), seed),
            StandardCharsets.UTF_8);
      }
      RecordHeaders headers = new RecordHeaders();
      headers.add(RecordAuth.HEADER, mac);
      boolean same = Arrays.equals(mac, rec.headers().lastHeader(RecordAuth.HEADER).value())
          && Arrays.equals(v, value) && key.equals(rec.key());
      assertEquals(same, AUTH.verify("chunks", key, v, headers).ok());
    });
  }

  @Test
  void arbitraryKeyFilesGiveAKeyOrBadInput() {
    Tries.run(300, g -> {
      Path file = write(keyFile(g));
      try {
        RecordAuth auth = RecordAuth.fromFile(file);
        assertTrue(auth.enabled());
      } catch (BadInputException e) {
        assertTrue(e.getMessage().contains("--auth-key-file"), e.getMessage());
      }
    });
  }

  /** A key pair file mutated, a pair file of random text, raw bytes, or a file too large. */
  private static byte[] keyFile(Tries.Gen g) {
    String hex = HexFormat.of().formatHex(KEY);
    byte[] pair = (RecordAuth.KEYS_FORMAT + "\ncurrent " + hex + "\nprevious " + HexFormat.of().formatHex(OTHER)
        + "\n# rotated\n").getBytes(StandardCharsets.US_ASCII);
    return switch (g.oneOf(4)) {
      case 0 -> HostileBytes.mutate(pair, g.anyLong());
      case 1 -> (RecordAuth.KEYS_FORMAT + "\n" + g.chars("abcdef0123456789 \n\t#currentpviousx", 0, 300))
          .getBytes(StandardCharsets.UTF_8);
      case 2 -> g.bytes(RecordAuth.MAX_KEY_BYTES + 10);
      default -> new byte[g.between(RecordAuth.MAX_KEY_BYTES, 3 * RecordAuth.MAX_KEY_BYTES)];
    };
  }

  private Path write(byte[] content) {
    try {
      return Files.write(dir.resolve("key"), content);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
