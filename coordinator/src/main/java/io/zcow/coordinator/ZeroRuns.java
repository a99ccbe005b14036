package io.zcow.coordinator;

import io.zcow.proto.RangeRun;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.List;

/**
 * The hole ranges of a plan as runs of consecutive ranges. A source with very many small holes
 * would make the JobSpec too large for its record: then only the longest runs are kept (the rest
 * are ordinary data ranges, whose holes the workers skip without reading), so the plan's size is
 * bounded by configuration, not by the disk.
 */
final class ZeroRuns {
  private ZeroRuns() {}

  /** Runs of ranges whose bit in {@code data} is clear, at most {@code max}, in range order. */
  static List<RangeRun> of(BitSet data, int ranges, int max) {
    List<RangeRun> runs = new ArrayList<>();
    for (int r = data.nextClearBit(0); r < ranges; ) {
      int end = Math.min(ranges, data.nextSetBit(r) < 0 ? ranges : data.nextSetBit(r));
      runs.add(RangeRun.newBuilder().setFirst(r).setCount(end - r).build());
      r = end >= ranges ? ranges : data.nextClearBit(end);
    }
    if (runs.size() <= max) {
      return runs;
    }
    List<RangeRun> longest = new ArrayList<>(runs);
    longest.sort(Comparator.comparingLong(RangeRun::getCount).reversed());
    List<RangeRun> kept = new ArrayList<>(longest.subList(0, max));
    kept.sort(Comparator.comparingLong(RangeRun::getFirst));
    return kept;
  }
}
