package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.CorruptException;
import java.io.ByteArrayInputStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Cases {@link HostileImageProperties} found, kept as plain tests; each failed before its fix. */
class HostileImageRegressionTest {
  private static final ImageGeometry G = ImageGeometry.forSource(HostileImageProperties.SIZE, HostileImageProperties.CS);
  private static final byte[] STATE = HostileImageProperties.validState(G, 8);
  /** After magic, cluster bits, virtual size and range size: the count of completed-range words. */
  private static final int DONE_COUNT = 24;

  private static CorruptException load(byte[] bytes) {
    return assertThrows(CorruptException.class,
        () -> new RangeTracker(G, 8).load(new ByteArrayInputStream(bytes), "x.part.state-1"));
  }

  private static byte[] withInt(byte[] bytes, int at, int value) {
    byte[] b = bytes.clone();
    ByteBuffer.wrap(b).putInt(at, value);
    return b;
  }

  @Test
  void aNegativeCountInAStateFileIsCorruptNotNegativeArraySize() {
    // seed -5160750949438785370 of arbitraryStateFilesAreCorrupt: NegativeArraySizeException -16777216
    assertTrue(load(withInt(STATE, DONE_COUNT, 0xff00_0000)).getMessage().contains("-16777216 words of completed ranges"));
  }

  @Test
  void aHugeCountInAStateFileIsCorruptNotOutOfMemory() {
    // OutOfMemoryError: the count sized a long[] before the CRC at the end could refuse the file
    assertTrue(load(withInt(STATE, DONE_COUNT, Integer.MAX_VALUE)).getMessage().contains("room for 1"));
  }

  @Test
  void aBitmapOfTheWrongLengthIsCorruptNotIllegalArgument() {
    // seed -6948232754464224052 of mutatedStateFilesLoadOrAreCorrupt: "expected 2 words, got 0"
    // Layout: 24-byte prefix, 1 word count + 1 word, in-flight count, range (8), word count (4).
    int wordsOfFirstRange = DONE_COUNT + 4 + 8 + 4 + 8;
    assertTrue(load(withInt(STATE, wordsOfFirstRange, 0)).getMessage().contains("bitmap of 0 words"));
  }

  @Test
  void aRangeInFlightOutsideTheImageIsCorrupt() {
    int firstRange = DONE_COUNT + 4 + 8 + 4;
    byte[] b = STATE.clone();
    ByteBuffer.wrap(b).putLong(firstRange, 1L << 40);
    assertTrue(load(b).getMessage().contains("range in flight"));
  }

  @Test
  void aCheckpointWithANegativeRefcountIsCorrupt() {
    // seed -730801939863833138 of checkpointBytesDecodeOrAreCorrupt: cursorRefcount -16777212 decoded
    byte[] b = new Checkpoint(3, 90, 88, 1000, 4, 70, 20, 2, 48, 1, 50_000, 4).toBytes();
    ByteBuffer.wrap(b).putInt(4 + 8 * 3 + 4, -16777212);
    assertThrows(CorruptException.class, () -> Checkpoint.fromBytes(b));
  }

  @Test
  void aCheckpointWhoseCursorIsNotAllocatedIsCorrupt() {
    byte[] b = new Checkpoint(3, 90, 95, 1000, 4, 70, 20, 2, 48, 1, 50_000, 4).toBytes();
    assertThrows(CorruptException.class, () -> Checkpoint.fromBytes(b));
  }

  @Test
  void resumingFromACheckpointBeyondTheRefcountTableIsCorruptNotIllegalState(@TempDir Path dir) {
    // seed 1261936171822050468 of resumingFromAMutatedCheckpointWritesOrIsTyped: a next free cluster
    // of 2^42 gave "IllegalStateException: refcount table of 512 entries cannot hold block 8589934592"
    ImageOptions o = ImageOptions.defaults(G).withRangeBytes(8L * HostileImageProperties.CS);
    Path target = dir.resolve("r.qcow2");
    ImageWriter w = ImageWriter.create(target, o);
    w.putZeros(0, 8);
    Checkpoint cp = w.checkpoint();
    w.close();
    Checkpoint far = new Checkpoint(cp.sequence(), 1L << 42, cp.cursorCluster(), cp.cursorUsed(), cp.cursorRefcount(),
        cp.guestClustersDone(), cp.zeroClusters(), cp.rawClusters(), cp.compressedClusters(), cp.duplicates(),
        cp.payloadBytes(), cp.rangesComplete());
    CorruptException e = assertThrows(CorruptException.class,
        () -> ImageWriter.resume(target, o, Checkpoint.fromBytes(far.toBytes())));
    assertTrue(e.getMessage().contains("next free cluster 4398046511104"), e.getMessage());
  }
}
