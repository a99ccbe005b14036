package io.zcow.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.zcow.testkit.HostileBytes;
import io.zcow.testkit.Tries;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * Record values and keys as a forger or a broken producer could send them: arbitrary bytes and
 * valid records with bytes flipped, cut or appended. Every decoder answers with a {@link
 * Wire.Decoded}, a key parser with an Optional; nothing throws. A failure names its try's seed
 * ({@link Tries}); a found case becomes a plain test beside these.
 */
class HostileRecordProperties {
  private static final List<Function<byte[], Wire.Decoded<?>>> DECODERS = List.of(
      Wire::jobSpec, Wire::rangeTask, Wire::chunkRecord, Wire::jobEvent, Wire::writerCheckpoint);

  @Test
  void arbitraryBytesDecodeToOkOrBad() {
    Tries.run(500, g -> {
      byte[] bytes = g.bytes(2048);
      for (Function<byte[], Wire.Decoded<?>> decoder : DECODERS) {
        assertDecoded(decoder.apply(bytes));
      }
    });
  }

  @Test
  void mutatedValidRecordsDecodeToOkOrBad() {
    Tries.run(500, g -> {
      byte[] bytes = HostileBytes.mutate(validRecord(g), g.anyLong());
      for (Function<byte[], Wire.Decoded<?>> decoder : DECODERS) {
        assertDecoded(decoder.apply(bytes));
      }
    });
  }

  @Test
  void rangeKeyParsesOnlyWhatItPrints() {
    Tries.run(1000, g -> {
      String key = key(g);
      Optional<RangeKey> parsed = RangeKey.parse(key);
      parsed.ifPresent(k -> {
        assertEquals(null, JobIds.problem(k.job()));
        assertTrue(k.range() >= 0);
        assertEquals(k, RangeKey.parse(k.toString()).orElseThrow());
      });
      assertTrue(RangeKey.claimedJob(key).length() <= 100);
      assertTrue(RangeKey.claimedRange(key) >= -1);
    });
  }

  private static void assertDecoded(Wire.Decoded<?> d) {
    assertNotNull(d);
    if (d instanceof Wire.Decoded.Bad<?> bad) {
      assertFalse(bad.reason().isBlank());
    }
  }

  /** A valid task, chunk batch or job spec. */
  private static byte[] validRecord(Tries.Gen g) {
    String id = g.chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 1, 20);
    long r = g.between(0L, 1L << 20);
    return switch (g.oneOf(3)) {
      case 0 -> RangeTask.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(id).setRangeIndex(r)
          .setOffset(r << 20).setLength(1 << 20).build().toByteArray();
      case 1 -> ChunkRecord.newBuilder().setBatch(ChunkBatch.newBuilder()
          .setFormatVersion(Wire.FORMAT_VERSION).setJobId(id).setRangeIndex(1)
          .addEntries(ChunkEntry.newBuilder().setKind(EntryKind.ENTRY_KIND_COMPRESSED).setCluster(7)
              .setPayload(ByteString.copyFrom(g.bytes(300))).setCrc32C(42))).build().toByteArray();
      default -> JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION)
          .setJobId(id).setSourceUri("file:///dev/null").setSourceSize(1 << 30).setVirtualSize(1 << 30)
          .setClusterSize(1 << 16).setRangeSize(1 << 26).setTargetPath("/t/" + id + ".qcow2")
          .setPlan(JobPlan.newBuilder().addZeroRanges(RangeRun.newBuilder().setFirst(1).setCount(2)))
          .build().toByteArray();
    };
  }

  /** A record key: well formed or nearly, anything, slashes and dots; now and then null. */
  private static String key(Tries.Gen g) {
    if (g.chance(0.02)) {
      return null;
    }
    return switch (g.oneOf(3)) {
      case 0 -> g.chars("ab01.-_", 0, 12) + "/" + g.chars("0123456789-+ ", 0, 22);
      case 1 -> g.anyString(300);
      default -> g.chars("/a9.", 0, 40);
    };
  }
}
