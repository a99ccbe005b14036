package io.zcow.coordinator;

import io.zcow.BadInputException;
import io.zcow.proto.RangeTask;
import io.zcow.proto.Wire;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.source.Source;
import java.util.BitSet;
import java.util.Objects;

/**
 * Splits a source into ranges of {@code rangeSize} bytes (the last one shorter) and tells which
 * ranges hold data: a range that is entirely a hole of a sparse source needs no task, its
 * clusters read as zeros (the writer learns so from {@link HoleRanges}).
 *
 * <p>Holes are found with the source's SEEK_DATA/SEEK_HOLE, so a mostly empty 16 TiB file costs
 * a few calls per data extent, not a read or a call per range. A source that cannot tell holes
 * reports everything as data.
 *
 * <p>Not thread safe; the source is borrowed, not closed.
 */
public final class Partitioner {
  private final Source source;
  private final ImageGeometry geometry;
  private final long rangeSize;
  private final long size;
  private final int rangeCount;

  /**
   * @param geometry the image's geometry for this source (its virtual size is the source size
   *     rounded up to 512)
   * @param rangeSize a positive multiple of the cluster size
   * @throws BadInputException when the range size does not fit the geometry, or yields more
   *     ranges than can be tracked (more than 2^31 - 1)
   */
  public Partitioner(Source source, ImageGeometry geometry, long rangeSize) {
    this.source = Objects.requireNonNull(source, "source");
    this.geometry = Objects.requireNonNull(geometry, "geometry");
    this.size = source.size();
    if (rangeSize <= 0 || rangeSize % geometry.clusterSize() != 0) {
      throw new BadInputException("range size " + rangeSize + " must be a positive multiple of the cluster size "
          + geometry.clusterSize());
    }
    if (geometry.virtualSize() != ((size + 511) & ~511L)) {
      throw new IllegalArgumentException("geometry's virtual size " + geometry.virtualSize()
          + " is not that of a " + size + "-byte source");
    }
    long count = ceilDiv(size, rangeSize);
    if (count > Integer.MAX_VALUE) {
      throw new BadInputException("range size " + rangeSize + " splits " + size + " bytes into " + count
          + " ranges: use a larger --range-size");
    }
    this.rangeSize = rangeSize;
    this.rangeCount = (int) count;
  }

  /**
   * One range of the source.
   *
   * @param index 0-based
   * @param offset byte offset in the source, a multiple of the range size
   * @param length bytes of source in it; less than the range size only for the last range
   */
  public record Span(long index, long offset, long length) {
    /** Index of its first guest cluster. */
    public long firstCluster(int clusterSize) {
      return offset / clusterSize;
    }

    /** Guest clusters it covers, the last one possibly partial. */
    public long clusters(int clusterSize) {
      return ceilDiv(length, clusterSize);
    }
  }

  public int rangeCount() {
    return rangeCount;
  }

  public long rangeSize() {
    return rangeSize;
  }

  public ImageGeometry geometry() {
    return geometry;
  }

  /** Range {@code index}, 0 to {@link #rangeCount()} - 1. */
  public Span span(long index) {
    if (index < 0 || index >= rangeCount) {
      throw new IndexOutOfBoundsException("range " + index + " of " + rangeCount);
    }
    long offset = index * rangeSize;
    return new Span(index, offset, Math.min(rangeSize, size - offset));
  }

  /** The task for range {@code index} of job {@code jobId}, first attempt. */
  public RangeTask task(String jobId, long index) {
    Span s = span(index);
    return RangeTask.newBuilder()
        .setFormatVersion(Wire.FORMAT_VERSION)
        .setJobId(jobId)
        .setRangeIndex(s.index())
        .setOffset(s.offset())
        .setLength(s.length())
        .setAttempt(0)
        .build();
  }

  /**
   * Which ranges hold at least one byte of data, found from the source's data extents. A range
   * whose bit is clear is a hole from end to end.
   */
  public BitSet dataRanges() {
    BitSet data = new BitSet(rangeCount);
    long pos = source.nextData(0);
    while (pos < size) {
      long hole = Math.min(size, Math.max(pos + 1, source.nextHole(pos)));
      int first = (int) (pos / rangeSize);
      int last = (int) ((hole - 1) / rangeSize);
      data.set(first, last + 1);
      // Every range up to `last` is known to hold data: look for more only beyond it.
      long next = Math.max(hole, (last + 1L) * rangeSize);
      if (next >= size) {
        break;
      }
      pos = source.nextData(next);
    }
    return data;
  }

  private static long ceilDiv(long a, long b) {
    return (a + b - 1) / b;
  }
}
