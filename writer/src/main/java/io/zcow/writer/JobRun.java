package io.zcow.writer;

import io.zcow.BadInputException;
import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.JobSpec;
import io.zcow.proto.Progress;
import io.zcow.qcow2.Codec;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.qcow2.ImageOptions;
import io.zcow.qcow2.ImageStats;
import io.zcow.qcow2.ImageWriter;
import io.zcow.qcow2.TargetCache;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * One job the writer is working on: its spec, its open image, and the per-range watches that
 * drive re-queues. Owned by the writer loop's thread.
 */
final class JobRun {
  enum State { OPEN, DONE, FAILED, CANCELLED }

  /** A submitted or started range that is not complete yet. */
  static final class RangeWatch {
    /** Highest attempt seen on the tasks topic (0 = the first submission). */
    int attempt;
    /** When the range last made progress (a task submitted, a cluster accepted), clock millis. */
    long lastProgressMs;
    /** When bad data last made us re-queue it; bad data is answered once per range timeout. */
    long lastBadRequeueMs = Long.MIN_VALUE;
  }

  final JobSpec spec;
  final String id;
  final Path target;
  final ImageOptions options;
  final ImageGeometry geometry;
  final long rangeClusters;
  final long ranges;
  ImageWriter image;
  State state = State.OPEN;
  final Map<Long, RangeWatch> watches = new HashMap<>();
  BitSet complete = new BitSet();
  long rejected;
  long requeued;

  JobRun(JobSpec spec, Path target, ImageOptions options) {
    this.spec = spec;
    this.id = spec.getJobId();
    this.target = target;
    this.options = options;
    // No options: a job that ended before its image could be opened (refused target, bad spec).
    this.geometry = options == null ? null : options.geometry();
    this.rangeClusters = options == null ? 1 : options.rangeClusters();
    this.ranges = options == null ? 0 : options.ranges();
  }

  /**
   * The image options a JobSpec asks for, with the writer's cache size and payload verification.
   *
   * @throws BadInputException naming the field that cannot be honoured
   */
  static ImageOptions optionsOf(JobSpec spec, long cacheBytes, boolean verifyPayloads) {
    int cs = spec.getClusterSize();
    if (cs <= 0 || Integer.bitCount(cs) != 1) {
      throw new BadInputException("cluster_size " + cs + " is not a power of two");
    }
    ImageGeometry geometry = new ImageGeometry(Integer.numberOfTrailingZeros(cs), spec.getVirtualSize());
    ImageGeometry.maxVirtualSize(geometry.clusterBits()); // refuses sizes the format cannot hold
    Codec codec = switch (spec.getCodec()) {
      case WIRE_CODEC_ZSTD -> Codec.ZSTD;
      case WIRE_CODEC_ZLIB -> Codec.ZLIB;
      default -> throw new BadInputException("codec " + spec.getCodec() + " is not supported");
    };
    TargetCache cache = switch (spec.getTargetCache()) {
      case WIRE_TARGET_CACHE_DIRECT -> TargetCache.DIRECT;
      case WIRE_TARGET_CACHE_WRITEBACK -> TargetCache.WRITEBACK;
      default -> TargetCache.AUTO;
    };
    return new ImageOptions(geometry, 1, cache, spec.getWriteCache(), Math.max(cacheBytes, 8L * cs), verifyPayloads,
        codec).withRangeBytes(spec.getRangeSize());
  }

  boolean isOpen() {
    return state == State.OPEN;
  }

  long firstCluster(long range) {
    return range * rangeClusters;
  }

  long endCluster(long range) {
    return Math.min((range + 1) * rangeClusters, geometry.guestClusters());
  }

  /** Source bytes of a range, for a RangeTask. */
  long rangeOffset(long range) {
    return firstCluster(range) * geometry.clusterSize();
  }

  long rangeLength(long range) {
    long size = spec.getSourceSize() > 0 ? spec.getSourceSize() : geometry.virtualSize();
    return Math.max(0, Math.min(size, endCluster(range) * (long) geometry.clusterSize()) - rangeOffset(range));
  }

  RangeWatch watch(long range, long nowMs) {
    return watches.computeIfAbsent(range, r -> {
      RangeWatch w = new RangeWatch();
      w.lastProgressMs = nowMs;
      return w;
    });
  }

  /**
   * Checks a batch before anything of it is allocated: its range and every entry's kind, cluster
   * index (inside the range and the image), count, payload size and CRC32C.
   *
   * @return null when the batch is good, else why not
   */
  String validate(ChunkBatch batch) {
    long range = batch.getRangeIndex();
    if (range >= ranges) {
      return "range " + range + " is outside the job's " + ranges + " ranges";
    }
    long first = firstCluster(range);
    long end = endCluster(range);
    int cs = geometry.clusterSize();
    CRC32C crc = new CRC32C();
    for (int i = 0; i < batch.getEntriesCount(); i++) {
      ChunkEntry e = batch.getEntries(i);
      long c = e.getCluster();
      if (c < first || c >= end) {
        return "entry " + i + ": cluster " + c + " is outside range " + range + " (clusters " + first + ".." + (end - 1) + ")";
      }
      int n = e.getPayload().size();
      switch (e.getKind()) {
        case ENTRY_KIND_ZERO -> {
          if (e.getCount() < 1 || e.getCount() > end - c) {
            return "entry " + i + ": zero run " + c + "+" + e.getCount() + " is outside range " + range;
          }
          if (n != 0) {
            return "entry " + i + ": zero run carries a " + n + "-byte payload";
          }
          continue;
        }
        case ENTRY_KIND_RAW -> {
          if (n != cs) {
            return "entry " + i + ": raw cluster " + c + " has " + n + " bytes, not " + cs;
          }
        }
        case ENTRY_KIND_COMPRESSED -> {
          if (n < 1 || n > cs - 1) {
            return "entry " + i + ": compressed cluster " + c + " has " + n + " bytes (must be 1.." + (cs - 1) + ")";
          }
        }
        default -> {
          return "entry " + i + ": unknown kind " + e.getKindValue();
        }
      }
      crc.reset();
      crc.update(e.getPayload().asReadOnlyByteBuffer());
      if ((int) crc.getValue() != e.getCrc32C()) {
        return String.format("entry %d: CRC32C of cluster %d is %08x, the record says %08x", i, c,
            (int) crc.getValue(), e.getCrc32C());
      }
    }
    return null;
  }

  Progress progress(long duplicatesExtra) {
    Progress.Builder p = Progress.newBuilder().setRangesTotal(ranges).setRejected(rejected).setRequeued(requeued);
    if (image != null && state == State.OPEN) {
      ImageStats s = image.stats();
      p.setRangesDone(s.rangesComplete()).setGuestBytesDone(s.guestClustersDone() * geometry.clusterSize())
          .setHostBytes(s.hostBytes()).setPayloadBytes(s.payloadBytes()).setDuplicates(s.duplicates() + duplicatesExtra);
    } else if (state == State.DONE && geometry != null) {
      p.setRangesDone(ranges).setGuestBytesDone(geometry.virtualSize());
    }
    return p.build();
  }

  String tag(long range) {
    return range < 0 ? "[job=" + id + "]" : "[job=" + id + " range=" + range + "]";
  }
}
