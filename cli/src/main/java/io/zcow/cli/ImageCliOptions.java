package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.qcow2.ImageOptions;
import io.zcow.qcow2.TargetCache;
import io.zcow.qcow2.ZstdClusterCompressor;
import picocli.CommandLine.Option;

/** The shape and writing of the qcow2 image a command makes ({@code convert}, {@code backup}). */
final class ImageCliOptions {
  @Option(names = "--cluster-size", paramLabel = "SIZE", description = "qcow2 cluster size, 4k to 2m (default: 64k).")
  SizeValue clusterSize = new SizeValue(64 << 10);

  @Option(names = "--range-size", paramLabel = "SIZE", description = "Unit of work and completion; a multiple of the cluster size (default: 512m).")
  SizeValue rangeSize = new SizeValue(ImageOptions.DEFAULT_RANGE_BYTES);

  @Option(names = "--level", paramLabel = "L", description = "zstd level, -7 to 22 (default: ${DEFAULT-VALUE}, QEMU's).")
  int level = 3;

  @Option(names = "--target-cache", paramLabel = "MODE", description = "auto, direct or writeback writes of TARGET (default: auto: direct where the file system allows it).")
  TargetCache targetCache = TargetCache.AUTO;

  @Option(names = "--write-cache", arity = "1", paramLabel = "on|off", converter = Converters.OnOff.class, description = "off writes every payload at once instead of through the cluster-fill cache (default: on).")
  boolean writeCache = true;

  /** Checks the values together; every problem is a BadInputException naming its option. */
  ImageCliOptions check() {
    if (level < ZstdClusterCompressor.MIN_LEVEL || level > ZstdClusterCompressor.MAX_LEVEL) {
      throw new BadInputException("--level must be " + ZstdClusterCompressor.MIN_LEVEL + " to "
          + ZstdClusterCompressor.MAX_LEVEL + ": " + level);
    }
    if (clusterSize.bytes() < 4096 || clusterSize.bytes() > (2 << 20) || Long.bitCount(clusterSize.bytes()) != 1) {
      throw new BadInputException("--cluster-size must be a power of two from 4k to 2m: " + clusterSize);
    }
    if (rangeSize.bytes() <= 0 || rangeSize.bytes() % clusterSize.bytes() != 0) {
      throw new BadInputException("--range-size " + rangeSize + " must be a positive multiple of the cluster size "
          + clusterSize);
    }
    return this;
  }

  int clusterBytes() {
    return (int) clusterSize.bytes();
  }
}
