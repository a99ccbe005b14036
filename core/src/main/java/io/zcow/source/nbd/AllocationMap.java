package io.zcow.source.nbd;

import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;

/**
 * Answers SEEK_DATA/SEEK_HOLE questions from {@code base:allocation} extents: only
 * NBD_STATE_ZERO counts as a hole (a HOLE without ZERO may read as anything, so it is data).
 * Keeps the last reply, so walking an export extent by extent costs one request per reply,
 * not one per question. Thread safe: the cache is an immutable list behind a volatile.
 */
final class AllocationMap {
  /** Asked of the server at once: large enough for few round trips, within the 32-bit length. */
  static final long QUERY_BYTES = 1L << 30;

  private final long size;
  private final int minBlock;
  private final BiFunction<Long, Long, List<Extent>> query; // (offset, length) -> extents from offset
  private volatile List<Extent> cached = List.of(); // consecutive, within [0, size)

  AllocationMap(long size, int minBlock, BiFunction<Long, Long, List<Extent>> query) {
    this.size = size;
    this.minBlock = minBlock;
    this.query = query;
  }

  long nextData(long offset) {
    return next(offset, false);
  }

  long nextHole(long offset) {
    return next(offset, true);
  }

  private long next(long offset, boolean zero) {
    if (offset < 0) {
      throw new IllegalArgumentException("offset must not be negative: " + offset);
    }
    long pos = offset;
    while (pos < size) {
      Extent e = extentAt(pos);
      if (e.zero() == zero) {
        return pos;
      }
      pos = e.end();
    }
    return size;
  }

  private Extent extentAt(long pos) {
    Extent e = find(cached, pos);
    if (e != null) {
      return e;
    }
    long start = pos - pos % minBlock;
    long length = Math.min(size - start, QUERY_BYTES);
    List<Extent> got = clip(query.apply(start, length));
    e = find(got, pos);
    if (e == null) {
      throw new io.zcow.RetriableException("block status at 0x" + Long.toHexString(start)
          + " answered extents that do not reach 0x" + Long.toHexString(pos), null);
    }
    cached = got;
    return e;
  }

  /** Extents past the export's end are cut there (a reply may run past what was asked). */
  private List<Extent> clip(List<Extent> extents) {
    List<Extent> out = new ArrayList<>(extents.size());
    for (Extent e : extents) {
      if (e.offset() >= size) {
        break;
      }
      out.add(e.end() <= size ? e : new Extent(e.offset(), size - e.offset(), e.flags()));
    }
    return List.copyOf(out);
  }

  private static Extent find(List<Extent> extents, long pos) {
    int lo = 0;
    int hi = extents.size() - 1;
    while (lo <= hi) {
      int mid = (lo + hi) >>> 1;
      Extent e = extents.get(mid);
      if (pos < e.offset()) {
        hi = mid - 1;
      } else if (pos >= e.end()) {
        lo = mid + 1;
      } else {
        return e;
      }
    }
    return null;
  }
}
