package io.zcow.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.zcow.testkit.HostileBytes;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.Size;

/**
 * Record values and keys as a forger or a broken producer could send them: arbitrary bytes and
 * valid records with bytes flipped, cut or appended. Every decoder answers with a {@link
 * Wire.Decoded}, a key parser with an Optional; nothing throws. jqwik prints the seed of a failure;
 * a found case becomes a plain test beside these.
 */
class HostileRecordProperties {
  private static final List<Function<byte[], Wire.Decoded<?>>> DECODERS = List.of(
      Wire::jobSpec, Wire::rangeTask, Wire::chunkRecord, Wire::jobEvent, Wire::writerCheckpoint);

  @Property(tries = 500)
  void arbitraryBytesDecodeToOkOrBad(@ForAll @Size(max = 2048) byte[] bytes) {
    for (Function<byte[], Wire.Decoded<?>> decoder : DECODERS) {
      assertDecoded(decoder.apply(bytes));
    }
  }

  @Property(tries = 500)
  void mutatedValidRecordsDecodeToOkOrBad(@ForAll("validRecords") byte[] valid, @ForAll long seed) {
    byte[] bytes = HostileBytes.mutate(valid, seed);
    for (Function<byte[], Wire.Decoded<?>> decoder : DECODERS) {
      assertDecoded(decoder.apply(bytes));
    }
  }

  @Property(tries = 1000)
  void rangeKeyParsesOnlyWhatItPrints(@ForAll("keys") String key) {
    Optional<RangeKey> parsed = RangeKey.parse(key);
    parsed.ifPresent(k -> {
      assertEquals(null, JobIds.problem(k.job()));
      assertTrue(k.range() >= 0);
      assertEquals(k, RangeKey.parse(k.toString()).orElseThrow());
    });
    assertTrue(RangeKey.claimedJob(key).length() <= 100);
    assertTrue(RangeKey.claimedRange(key) >= -1);
  }

  private static void assertDecoded(Wire.Decoded<?> d) {
    assertNotNull(d);
    if (d instanceof Wire.Decoded.Bad<?> bad) {
      assertFalse(bad.reason().isBlank());
    }
  }

  @Provide
  Arbitrary<byte[]> validRecords() {
    Arbitrary<String> ids = Arbitraries.strings().alpha().numeric().ofMinLength(1).ofMaxLength(20);
    Arbitrary<Long> ranges = Arbitraries.longs().between(0, 1 << 20);
    Arbitrary<byte[]> task = ids.flatMap(id -> ranges.map(r -> RangeTask.newBuilder()
        .setFormatVersion(Wire.FORMAT_VERSION).setJobId(id).setRangeIndex(r).setOffset(r << 20)
        .setLength(1 << 20).build().toByteArray()));
    Arbitrary<byte[]> batch = ids.flatMap(id -> Arbitraries.bytes().array(byte[].class).ofMaxSize(300)
        .map(payload -> ChunkRecord.newBuilder().setBatch(ChunkBatch.newBuilder()
            .setFormatVersion(Wire.FORMAT_VERSION).setJobId(id).setRangeIndex(1)
            .addEntries(ChunkEntry.newBuilder().setKind(EntryKind.ENTRY_KIND_COMPRESSED).setCluster(7)
                .setPayload(ByteString.copyFrom(payload)).setCrc32C(42))).build().toByteArray()));
    Arbitrary<byte[]> spec = ids.map(id -> JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION)
        .setJobId(id).setSourceUri("file:///dev/null").setSourceSize(1 << 30).setVirtualSize(1 << 30)
        .setClusterSize(1 << 16).setRangeSize(1 << 26).setTargetPath("/t/" + id + ".qcow2")
        .setPlan(JobPlan.newBuilder().addZeroRanges(RangeRun.newBuilder().setFirst(1).setCount(2)))
        .build().toByteArray());
    return Arbitraries.oneOf(task, batch, spec);
  }

  @Provide
  Arbitrary<String> keys() {
    Arbitrary<String> wellFormed = Arbitraries.strings().withChars("ab01.-_").ofMinLength(0).ofMaxLength(12)
        .flatMap(job -> Arbitraries.strings().withChars("0123456789-+ ").ofMaxLength(22).map(r -> job + "/" + r));
    Arbitrary<String> anything = Arbitraries.strings().all().ofMaxLength(300);
    Arbitrary<String> slashes = Arbitraries.strings().withChars("/a9.").ofMaxLength(40);
    return Arbitraries.oneOf(wellFormed, anything, slashes).injectNull(0.02);
  }
}
