package io.zcow.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import org.junit.jupiter.api.Test;

class WireTest {
  @Test
  void decodesWhatItEncodes() {
    ChunkRecord rec = ChunkRecord.newBuilder().setBatch(ChunkBatch.newBuilder()
        .setFormatVersion(Wire.FORMAT_VERSION).setJobId("j").setRangeIndex(3)
        .addEntries(ChunkEntry.newBuilder().setKind(EntryKind.ENTRY_KIND_COMPRESSED).setCluster(7)
            .setPayload(ByteString.copyFromUtf8("abc")).setCrc32C(42))).build();
    Wire.Decoded<ChunkRecord> d = Wire.chunkRecord(rec.toByteArray());
    assertEquals(rec, assertInstanceOf(Wire.Decoded.Ok.class, d).value());
  }

  @Test
  void garbageIsABadValueNotAnException() {
    byte[] garbage = {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x7f, 1, 2, 3};
    for (Wire.Decoded<?> d : new Wire.Decoded<?>[] {
        Wire.chunkRecord(garbage), Wire.rangeTask(garbage), Wire.jobSpec(garbage), Wire.jobEvent(garbage),
        Wire.writerCheckpoint(garbage), Wire.rangeTask(null)}) {
      Wire.Decoded.Bad<?> bad = assertInstanceOf(Wire.Decoded.Bad.class, d);
      assertTrue(!bad.reason().isBlank());
    }
  }

  @Test
  void refusesUnknownFormatVersionAndEmptyBody() {
    byte[] v2 = RangeTask.newBuilder().setFormatVersion(2).setJobId("j").build().toByteArray();
    assertTrue(assertInstanceOf(Wire.Decoded.Bad.class, Wire.rangeTask(v2)).reason().contains("format version 2"));
    byte[] none = RangeTask.newBuilder().setJobId("j").build().toByteArray();
    assertInstanceOf(Wire.Decoded.Bad.class, Wire.rangeTask(none));
    assertInstanceOf(Wire.Decoded.Bad.class, Wire.chunkRecord(new byte[0]));
  }

  @Test
  void rangeKeysNameJobAndRange() {
    assertEquals("job-1/12", Wire.rangeKey("job-1", 12));
  }
}
