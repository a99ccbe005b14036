package io.zcow.qcow2;

import io.zcow.CorruptException;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.LongConsumer;
import java.util.zip.CRC32C;
import java.util.zip.CheckedInputStream;
import java.util.zip.CheckedOutputStream;

/**
 * Which guest clusters have arrived, per range, and the L2 entries of tables not yet written.
 *
 * <p>A range is complete when its bitmap is full (zero clusters included), whatever any message
 * claims. Only ranges in flight hold a bitmap, and only L2 tables touched by them hold entries, so
 * memory follows the work in flight, not the disk size (plus one bit per range). An L2 table with
 * no entry (all zeros) never needs writing. Not thread safe: the writer's allocation lock guards it.
 */
final class RangeTracker {
  private static final int MAGIC = 0x5a53_5431; // "ZST1"

  private final ImageGeometry geometry;
  private final long rangeClusters;
  private final long ranges;
  private final BitSet complete = new BitSet();
  private final Map<Long, RangeBitmap> inFlight = new HashMap<>();
  private final Map<Long, long[]> tables = new TreeMap<>();

  RangeTracker(ImageGeometry geometry, long rangeClusters) {
    this.geometry = geometry;
    this.rangeClusters = rangeClusters;
    this.ranges = ImageGeometry.ceilDiv(geometry.guestClusters(), rangeClusters);
    if (ranges > Integer.MAX_VALUE) {
      throw new io.zcow.BadInputException("too many ranges (" + ranges + "): use a larger --range-size");
    }
  }

  long ranges() {
    return ranges;
  }

  long completeCount() {
    return complete.cardinality();
  }

  boolean isComplete(long range) {
    return complete.get((int) range);
  }

  BitSet completeRanges() {
    return (BitSet) complete.clone();
  }

  private int clustersIn(long range) {
    return (int) Math.min(rangeClusters, geometry.guestClusters() - range * rangeClusters);
  }

  boolean isReceived(long guestCluster) {
    long r = guestCluster / rangeClusters;
    if (complete.get((int) r)) {
      return true;
    }
    RangeBitmap b = inFlight.get(r);
    return b != null && b.get((int) (guestCluster - r * rangeClusters));
  }

  /**
   * Marks [first, first + count) as arrived; calls {@code onComplete} for each range this
   * completes.
   *
   * @return how many of them had not arrived before
   */
  long mark(long first, long count, LongConsumer onComplete) {
    long added = 0;
    long end = first + count;
    for (long g = first; g < end; ) {
      long r = g / rangeClusters;
      long rangeStart = r * rangeClusters;
      long stop = Math.min(end, rangeStart + clustersIn(r));
      if (!complete.get((int) r)) {
        RangeBitmap b = inFlight.get(r);
        if (b == null && g == rangeStart && stop == rangeStart + clustersIn(r)) {
          added += stop - g; // the whole range at once: no bitmap needed
          finish(r, onComplete);
        } else {
          if (b == null) {
            b = new RangeBitmap(clustersIn(r));
            inFlight.put(r, b);
          }
          added += b.setRange((int) (g - rangeStart), (int) (stop - rangeStart));
          if (b.isFull()) {
            inFlight.remove(r);
            finish(r, onComplete);
          }
        }
      }
      g = stop;
    }
    return added;
  }

  private void finish(long range, LongConsumer onComplete) {
    complete.set((int) range);
    onComplete.accept(range);
  }

  void setEntry(long guestCluster, long entry) {
    long t = guestCluster / geometry.l2Entries();
    tables.computeIfAbsent(t, k -> new long[geometry.l2Entries()])[(int) (guestCluster % geometry.l2Entries())] = entry;
  }

  /** L2 tables covering any cluster of {@code range}, first and last. */
  long[] tablesOf(long range) {
    long first = range * rangeClusters;
    long last = first + clustersIn(range) - 1;
    return new long[] {first / geometry.l2Entries(), last / geometry.l2Entries()};
  }

  /** True once every range touching L2 table {@code t} is complete. */
  boolean tableReady(long t) {
    long firstCluster = t * geometry.l2Entries();
    long lastCluster = Math.min(firstCluster + geometry.l2Entries(), geometry.guestClusters()) - 1;
    int from = (int) (firstCluster / rangeClusters);
    int to = (int) (lastCluster / rangeClusters);
    int firstMissing = complete.nextClearBit(from);
    return firstMissing > to;
  }

  /** Removes and returns the entries of table t, or null when it has none (reads as zeros). */
  long[] takeTable(long t) {
    return tables.remove(t);
  }

  /** Writes everything needed to continue: completed ranges, bitmaps in flight, pending tables. */
  void save(OutputStream out) throws IOException {
    CRC32C crc = new CRC32C();
    DataOutputStream d = new DataOutputStream(new CheckedOutputStream(out, crc));
    d.writeInt(MAGIC);
    d.writeInt(geometry.clusterBits());
    d.writeLong(geometry.virtualSize());
    d.writeLong(rangeClusters);
    long[] done = complete.toLongArray();
    d.writeInt(done.length);
    for (long w : done) {
      d.writeLong(w);
    }
    d.writeInt(inFlight.size());
    for (var e : inFlight.entrySet()) {
      d.writeLong(e.getKey());
      long[] words = e.getValue().words();
      d.writeInt(words.length);
      for (long w : words) {
        d.writeLong(w);
      }
    }
    d.writeInt(tables.size());
    for (var e : tables.entrySet()) {
      d.writeLong(e.getKey());
      for (long v : e.getValue()) {
        d.writeLong(v);
      }
    }
    d.flush();
    new DataOutputStream(out).writeInt((int) crc.getValue());
  }

  void load(InputStream in, String name) throws IOException {
    CRC32C crc = new CRC32C();
    DataInputStream d = new DataInputStream(new CheckedInputStream(in, crc));
    if (d.readInt() != MAGIC
        || d.readInt() != geometry.clusterBits()
        || d.readLong() != geometry.virtualSize()
        || d.readLong() != rangeClusters) {
      throw new CorruptException(name + " is not the state of this image (geometry or range size differ)");
    }
    // Every count is checked against this image before it sizes an array: a damaged or foreign
    // state file is corrupt, never a NegativeArraySize or an OutOfMemoryError.
    long[] done = new long[count(d.readInt(), (ranges + 63) / 64, "words of completed ranges", name)];
    for (int i = 0; i < done.length; i++) {
      done[i] = d.readLong();
    }
    complete.clear();
    complete.or(BitSet.valueOf(done));
    int n = count(d.readInt(), ranges, "ranges in flight", name);
    for (int i = 0; i < n; i++) {
      long r = d.readLong();
      if (r < 0 || r >= ranges) {
        throw new CorruptException(name + ": range in flight " + r + " is not in [0, " + ranges + ")");
      }
      int expectedWords = (clustersIn(r) + 63) >>> 6;
      int w = d.readInt();
      if (w != expectedWords) {
        throw new CorruptException(name + ": range " + r + " has a bitmap of " + w + " words, not " + expectedWords);
      }
      long[] words = new long[w];
      for (int k = 0; k < words.length; k++) {
        words[k] = d.readLong();
      }
      inFlight.put(r, RangeBitmap.of(clustersIn(r), words));
    }
    int t = count(d.readInt(), geometry.l1Size(), "pending L2 tables", name);
    for (int i = 0; i < t; i++) {
      long index = d.readLong();
      if (index < 0 || index >= geometry.l1Size()) {
        throw new CorruptException(name + ": pending L2 table " + index + " is not in [0, " + geometry.l1Size() + ")");
      }
      long[] entries = new long[geometry.l2Entries()];
      for (int k = 0; k < entries.length; k++) {
        entries[k] = d.readLong();
      }
      tables.put(index, entries);
    }
    int expected = (int) crc.getValue();
    if (new DataInputStream(in).readInt() != expected) {
      throw new CorruptException(name + " fails its CRC32C: the state file is damaged");
    }
  }

  private static int count(int n, long max, String what, String name) {
    if (n < 0 || n > max) {
      throw new CorruptException(name + ": " + n + " " + what + " (this image has room for " + max + ")");
    }
    return n;
  }
}
