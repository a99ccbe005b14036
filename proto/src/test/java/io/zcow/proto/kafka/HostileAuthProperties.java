package io.zcow.proto.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.testkit.HostileBytes;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.Size;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeaders;

/**
 * Record headers and key files as an attacker or a slip of the operator could make them. {@link
 * RecordAuth#verify} answers with a verdict, never an exception, and OK only for the record as
 * signed; {@link RecordAuth#fromFile} answers with a key or a {@link BadInputException}.
 */
class HostileAuthProperties {
  private static final byte[] KEY = "0123456789abcdef0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] OTHER = "fedcba9876543210fedcba9876543210".getBytes(StandardCharsets.US_ASCII);
  private static final RecordAuth AUTH = RecordAuth.withKeys(KEY, OTHER);
  private static Path dir;

  @BeforeContainer
  static void makeDir() throws IOException {
    dir = Files.createTempDirectory("zcow-keys");
  }

  @AfterContainer
  static void removeDir() throws IOException {
    try (var files = Files.list(dir)) {
      for (Path p : files.toList()) {
        Files.delete(p);
      }
    }
    Files.delete(dir);
  }

  @Property(tries = 1000)
  void arbitraryHeadersAreRefusedWithAVerdict(@ForAll @Size(max = 80) byte[] header,
      @ForAll @Size(max = 3) java.util.List<@Size(max = 40) byte[]> others, @ForAll boolean nullValue) {
    RecordHeaders headers = new RecordHeaders();
    for (byte[] o : others) {
      headers.add("x", o);
    }
    headers.add(RecordAuth.HEADER, nullValue ? null : header);
    RecordAuth.Verdict v = AUTH.verify("t", "job/1", new byte[] {1, 2, 3}, headers);
    assertNotEquals(RecordAuth.Status.OK, v.status());
    assertFalse(v.reason().isBlank());
  }

  @Property(tries = 500)
  void aSignedRecordChangedAnywhereIsBad(@ForAll @Size(max = 200) byte[] value, @ForAll long seed,
      @ForAll("parts") int part) {
    ProducerRecord<String, byte[]> rec = AUTH.sign(new ProducerRecord<>("chunks", "job/7", value));
    byte[] mac = rec.headers().lastHeader(RecordAuth.HEADER).value();
    String key = rec.key();
    byte[] v = value;
    switch (part) {
      case 0 -> mac = HostileBytes.mutate(mac, seed);
      case 1 -> v = HostileBytes.mutate(value, seed);
      default -> key = new String(HostileBytes.mutate(key.getBytes(StandardCharsets.UTF_8), seed), StandardCharsets.UTF_8);
    }
    RecordHeaders headers = new RecordHeaders();
    headers.add(RecordAuth.HEADER, mac);
    boolean same = Arrays.equals(mac, rec.headers().lastHeader(RecordAuth.HEADER).value())
        && Arrays.equals(v, value) && key.equals(rec.key());
    assertEquals(same, AUTH.verify("chunks", key, v, headers).ok());
  }

  @Property(tries = 300)
  void arbitraryKeyFilesGiveAKeyOrBadInput(@ForAll("keyFiles") byte[] content) {
    Path file = write(content);
    try {
      RecordAuth auth = RecordAuth.fromFile(file);
      assertTrue(auth.enabled());
    } catch (BadInputException e) {
      assertTrue(e.getMessage().contains("--auth-key-file"), e.getMessage());
    }
  }

  @Provide
  Arbitrary<Integer> parts() {
    return Arbitraries.integers().between(0, 2);
  }

  @Provide
  Arbitrary<byte[]> keyFiles() {
    String hex = HexFormat.of().formatHex(KEY);
    byte[] pair = (RecordAuth.KEYS_FORMAT + "\ncurrent " + hex + "\nprevious " + HexFormat.of().formatHex(OTHER)
        + "\n# rotated\n").getBytes(StandardCharsets.US_ASCII);
    Arbitrary<byte[]> mutatedPair = Arbitraries.longs().map(s -> HostileBytes.mutate(pair, s));
    Arbitrary<byte[]> pairText = Arbitraries.strings().withChars("abcdef0123456789 \n\t#currentpviousx")
        .ofMaxLength(300).map(t -> (RecordAuth.KEYS_FORMAT + "\n" + t).getBytes(StandardCharsets.UTF_8));
    Arbitrary<byte[]> raw = Arbitraries.bytes().array(byte[].class).ofMaxSize(RecordAuth.MAX_KEY_BYTES + 10);
    Arbitrary<byte[]> big = Arbitraries.integers().between(RecordAuth.MAX_KEY_BYTES, 3 * RecordAuth.MAX_KEY_BYTES)
        .map(byte[]::new);
    return Arbitraries.oneOf(mutatedPair, pairText, raw, big);
  }

  private static Path write(byte[] content) {
    try {
      Path file = dir.resolve("key");
      Files.write(file, content);
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
