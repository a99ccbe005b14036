package io.zcow.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

class EntryChecksumTest {
  private static final ChunkEntry DATA = EntryChecksum.seal(ChunkEntry.newBuilder()
      .setKind(EntryKind.ENTRY_KIND_COMPRESSED).setCluster(1000).setPayload(ByteString.copyFromUtf8("payload")));
  private static final ChunkEntry ZEROS = EntryChecksum.seal(ChunkEntry.newBuilder()
      .setKind(EntryKind.ENTRY_KIND_ZERO).setCluster(64).setCount(9));

  @Test
  void isCrc32cOverKindClusterCountBigEndianThenPayload() {
    byte[] p = "payload".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    ByteBuffer b = ByteBuffer.allocate(17 + p.length).put((byte) 2).putLong(1000).putLong(0).put(p).flip();
    CRC32C crc = new CRC32C();
    crc.update(b);
    assertEquals((int) crc.getValue(), DATA.getCrc32C());
  }

  @Test
  void eachFieldChangesTheChecksum() {
    List<ChunkEntry> changed = List.of(
        DATA.toBuilder().setKind(EntryKind.ENTRY_KIND_RAW).build(),
        DATA.toBuilder().setCluster(1001).build(),
        DATA.toBuilder().setCluster(1000L | 1L << 40).build(),
        DATA.toBuilder().setCount(1).build(),
        DATA.toBuilder().setPayload(ByteString.copyFromUtf8("paylaod")).build(),
        ZEROS.toBuilder().setKind(EntryKind.ENTRY_KIND_COMPRESSED).build(),
        ZEROS.toBuilder().setCluster(65).build(),
        ZEROS.toBuilder().setCount(8).build(),
        ZEROS.toBuilder().setPayload(ByteString.copyFrom(new byte[1])).build());
    assertTrue(EntryChecksum.matches(DATA));
    assertTrue(EntryChecksum.matches(ZEROS));
    for (ChunkEntry e : changed) {
      assertFalse(EntryChecksum.matches(e), "a change went unnoticed: " + e);
    }
  }

  @Test
  void aZeroRunHasAChecksumNotZeroAndNotOnlyOfItsPayload() {
    assertNotEquals(0, ZEROS.getCrc32C());
    CRC32C payloadOnly = new CRC32C();
    payloadOnly.update(DATA.getPayload().toByteArray());
    assertNotEquals((int) payloadOnly.getValue(), DATA.getCrc32C());
  }

  @Test
  void readsThePayloadWithoutMovingIt() {
    ByteBuffer p = ByteBuffer.wrap("payload".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    assertEquals(DATA.getCrc32C(), EntryChecksum.of(EntryKind.ENTRY_KIND_COMPRESSED_VALUE, 1000, 0, p));
    assertEquals(0, p.position());
  }
}
