package io.zcow.proto;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * The checksum of one {@link ChunkEntry} ({@code crc32c} on the wire): CRC32C over the kind as one
 * byte, the cluster index and the zero-run count as 8 bytes big-endian each, then the payload,
 * then the cluster's digest when the entry carries one (entries without it sum as before).
 *
 * <p>Kafka's batch CRC proves only that the broker stored what the producer sent, and the chunk
 * consumer skips even that check ({@code check.crcs=false}); a checksum of the payload alone would
 * let a flipped cluster index, kind or count be written to the wrong place. Covering every field
 * that decides where and what the writer writes leaves the entry's own checksum to catch it, with
 * or without a MAC key. ZERO entries carry one too.
 *
 * <p>A kind is one byte here: kinds past 255 do not exist, and the writer refuses unknown kinds
 * before it compares checksums. Stateless and thread safe.
 */
public final class EntryChecksum {
  /** Kind, cluster and count ahead of the payload. */
  private static final int HEADER_BYTES = 1 + Long.BYTES + Long.BYTES;

  private EntryChecksum() {}

  /** The checksum of an entry with these fields (the payload's remaining bytes; its position is left alone). */
  public static int of(int kind, long cluster, long count, ByteBuffer payload) {
    return of(kind, cluster, count, payload, ByteBuffer.allocate(0));
  }

  /** As {@link #of(int, long, long, ByteBuffer)}, then the digest's remaining bytes. */
  public static int of(int kind, long cluster, long count, ByteBuffer payload, ByteBuffer digest) {
    ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES).put((byte) kind).putLong(cluster).putLong(count).flip();
    CRC32C crc = new CRC32C();
    crc.update(header);
    crc.update(payload.duplicate());
    crc.update(digest.duplicate());
    return (int) crc.getValue();
  }

  /** The checksum the entry's fields call for, whatever its {@code crc32c} says. */
  public static int of(ChunkEntryOrBuilder e) {
    return of(e.getKindValue(), e.getCluster(), e.getCount(), e.getPayload().asReadOnlyByteBuffer(),
        e.getDigest().asReadOnlyByteBuffer());
  }

  /** Sets the builder's {@code crc32c} to the checksum of its other fields, and builds it. */
  public static ChunkEntry seal(ChunkEntry.Builder e) {
    return e.setCrc32C(of(e)).build();
  }

  /** Whether the entry's {@code crc32c} is the checksum of its fields. */
  public static boolean matches(ChunkEntryOrBuilder e) {
    return of(e) == e.getCrc32C();
  }
}
