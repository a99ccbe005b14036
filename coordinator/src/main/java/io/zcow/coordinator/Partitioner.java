package io.zcow.coordinator;

import io.zcow.BadInputException;
import io.zcow.proto.RangeLayout;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.source.Source;
import java.util.BitSet;
import java.util.Objects;

/**
 * Splits a source into ranges ({@link RangeLayout}: the range arithmetic every role shares) and
 * tells which ranges hold data: a range that is entirely a hole of a sparse source needs no task,
 * its clusters read as zeros (the job's plan says so, and the writer completes it at once).
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
  private final RangeLayout layout;

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
    long size = source.size();
    if (geometry.virtualSize() != ((size + 511) & ~511L)) {
      throw new IllegalArgumentException("geometry's virtual size " + geometry.virtualSize()
          + " is not that of a " + size + "-byte source");
    }
    try {
      this.layout = new RangeLayout(size, geometry.clusterSize(), rangeSize);
    } catch (IllegalArgumentException e) {
      throw new BadInputException(e.getMessage().replace("rangeSize", "range size") + ": use another --range-size");
    }
  }

  public int rangeCount() {
    return layout.ranges();
  }

  public long rangeSize() {
    return layout.rangeSize();
  }

  public RangeLayout layout() {
    return layout;
  }

  public ImageGeometry geometry() {
    return geometry;
  }

  /**
   * Which ranges hold at least one byte of data, found from the source's data extents. A range
   * whose bit is clear is a hole from end to end.
   */
  public BitSet dataRanges() {
    long size = layout.sourceSize();
    long rangeSize = layout.rangeSize();
    BitSet data = new BitSet(layout.ranges());
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
}
