package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.qcow2.BackingFile;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.qcow2.ImageOptions;
import io.zcow.qcow2.ImageStats;
import io.zcow.qcow2.Manifest;
import io.zcow.qcow2.ManifestReader;
import io.zcow.source.DirtyClusters;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import io.zcow.source.Sources;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code zcow convert SOURCE TARGET}: a compressed qcow2 image in one process, without Kafka. */
@Command(
    name = "convert",
    mixinStandardHelpOptions = true,
    description = {
      "Converts SOURCE (a block device, a raw disk image, or an NBD export: nbd://HOST[:PORT]/EXPORT, nbds://..., nbd+unix:///EXPORT?socket=PATH) into a zstd-compressed qcow2 image at TARGET, in this process alone: the single-host baseline of 'zcow backup'.",
      "",
      "The image is built in TARGET.part and renamed to TARGET once complete; on failure or Ctrl-C nothing is left behind. Holes of a sparse SOURCE are not read.",
      "",
      "Every image gets a digest manifest beside it, TARGET.digests: the SHA-256 of each guest cluster, bound to the image.",
      "",
      "With --incremental PREV --bitmap NAME, TARGET is an overlay whose backing file is PREV: it holds only the clusters the dirty bitmap NAME of the NBD SOURCE marks changed (and any the source grew by). With --incremental PREV alone, any SOURCE: every cluster is read and digested, and only those whose digest differs from PREV's manifest (PREV.digests) are stored. PREV must be a clean qcow2 v3 image with sound metadata (as qemu-img check sees it) and the same cluster size (and, without --bitmap, a manifest that matches it); a source smaller than PREV is refused.",
      "",
      "Exit codes: 0 done, 1 failed, 2 bad usage or input.",
      ""
    },
    sortOptions = false)
final class ConvertCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "SOURCE", description = "Block device, raw disk image or NBD URI to read.")
  String source;

  @Parameters(index = "1", paramLabel = "TARGET", description = "qcow2 image to write.")
  Path target;

  @Option(names = "--threads", paramLabel = "N", description = "Compressing threads (default: the number of cores, ${DEFAULT-VALUE}).")
  int threads = Runtime.getRuntime().availableProcessors();

  @Mixin ImageCliOptions image = new ImageCliOptions();

  @Option(names = "--cache-size", paramLabel = "SIZE", description = "Memory of the cluster-fill cache (default: 256m).")
  SizeValue cacheSize = new SizeValue(ImageOptions.DEFAULT_CACHE_BYTES);

  @Option(names = "--source-cache", paramLabel = "MODE", description = "auto, direct or writeback reads of SOURCE (default: auto).")
  SourceCache sourceCache = SourceCache.AUTO;

  @Option(names = "--progress", paramLabel = "MODE", description = "auto (a bar on a terminal, else lines), plain or none (default: auto).")
  Progress.Mode progress = Progress.Mode.AUTO;

  @Mixin NbdCliOptions nbd = new NbdCliOptions();

  @Mixin IncrementalCliOptions incremental = new IncrementalCliOptions();

  @Option(names = "--force", description = "Replace TARGET (and a stale TARGET.part) if it exists. TARGET stays untouched until the new image is complete.")
  boolean force;

  @Override
  public Integer call() throws IOException {
    PrintStream err = System.err;
    Progress.Mode progressMode = progress;
    if (threads < 1 || threads > 1024) {
      throw new BadInputException("--threads must be 1 to 1024: " + threads);
    }
    image.check();
    IncrementalCliOptions.Request inc = incremental.check(source);
    TargetPaths.check(target, force);
    DirtyClusters changed = inc == null || inc.byDigest() ? null : inc.changed(nbd.options(), image.clusterBytes());
    boolean byDigest = inc != null && inc.byDigest();
    try (Source src = Sources.open(source, sourceCache, nbd.options())) {
      ImageGeometry geometry = ImageGeometry.forSource(src.size(), image.clusterBytes());
      ImageOptions options = ImageOptions.defaults(geometry)
          .withRangeBytes(image.rangeSize.bytes())
          .withCacheBytes(cacheSize.bytes())
          .withTargetCache(image.targetCache)
          .withWriteCache(image.writeCache);
      if (inc != null) {
        options = options.withBacking(BackingFile.of(inc.previous(), target, geometry));
      }
      try (ManifestReader previousDigests = byDigest ? inc.previousDigests() : null) {
        TargetPaths.clearStalePart(target, force);
        Converter converter = new Converter(src, target, options, threads, image.level).onlyChanged(changed);
        if (byDigest) {
          converter.byDigest(previousDigests);
        }
        run(converter, geometry, src, changed, inc, err);
      }
    }
    return Main.EXIT_OK;
  }

  private void run(Converter converter, ImageGeometry geometry, Source src, DirtyClusters changed,
      IncrementalCliOptions.Request inc, PrintStream err) throws IOException {
    Progress.Mode progressMode = progress;
    Thread hook = new Thread(() -> converter.cancelAndWait(30_000), "zcow-convert-interrupt");
    Runtime.getRuntime().addShutdownHook(hook);
    long started = System.nanoTime();
    ImageStats stats;
    long changedTotal = converter.changedBytesTotal();
    try (Progress p = changed != null
        ? Progress.ofChanged(progressMode, "convert", () -> changedTotal, geometry.virtualSize(),
            converter::changedBytesDone, converter::hostBytes, err)
        : new Progress(progressMode, "convert", geometry.virtualSize(), converter::guestBytesDone,
            converter::hostBytes, err)) {
      stats = converter.run();
      p.close(true);
    } finally {
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException shuttingDown) {
        // the hook is running: the conversion was cancelled and cleaned up
      }
    }
    if (progressMode != Progress.Mode.NONE) {
      double secs = (System.nanoTime() - started) / 1e9;
      err.printf(Locale.ROOT, "wrote %s: %s from %s (%.2fx) in %.1f s, %d zero / %d compressed / %d raw clusters%n",
          target, Progress.human(Files.size(target)), Progress.human(src.size()),
          (double) src.size() / Math.max(1, Files.size(target)), secs,
          stats.zeroClusters(), stats.compressedClusters(), stats.rawClusters());
      if (changed != null) {
        err.printf(Locale.ROOT, "changed %s, %s of the disk's %s, on %s%n", Progress.human(changedTotal),
            Progress.share(changedTotal, geometry.virtualSize()), Progress.human(geometry.virtualSize()),
            inc.previous());
      }
      if (inc != null && inc.byDigest()) {
        long changedCount = converter.changedClusters();
        long read = changedCount + converter.unchangedClusters();
        err.printf(Locale.ROOT, "read %d clusters: %d changed (%s), %d unchanged, against %s%n", read, changedCount,
            Progress.share(changedCount * geometry.clusterSize(), read * (long) geometry.clusterSize()),
            converter.unchangedClusters(), Manifest.pathOf(inc.previous()));
      }
    }
  }
}
