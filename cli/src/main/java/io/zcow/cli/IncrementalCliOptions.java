package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.source.DirtyClusters;
import io.zcow.source.nbd.DirtyBitmap;
import io.zcow.source.nbd.NbdOptions;
import io.zcow.source.nbd.NbdUri;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** {@code --incremental PREV --bitmap NAME}: an overlay on PREV holding only what NAME marks changed. */
final class IncrementalCliOptions {
  @Option(names = "--incremental", paramLabel = "PREV", description = "Write TARGET as an incremental overlay on the qcow2 image PREV (the last link of the chain; named in TARGET relative to TARGET's directory; for backup --kafka, a path under the writer group's target root like TARGET): only the clusters --bitmap marks changed are read and stored.")
  Path previous;

  @Option(names = "--bitmap", paramLabel = "NAME", description = "The QEMU dirty bitmap of an NBD SOURCE (qemu:dirty-bitmap:NAME, e.g. qemu-nbd -B NAME) that recorded the changes since PREV.")
  String bitmap;

  boolean enabled() {
    return previous != null;
  }

  /** Refuses a half-given pair or a source without a dirty bitmap; one line each. */
  void check(String source) {
    if ((previous == null) != (bitmap == null)) {
      throw new BadInputException("--incremental and --bitmap go together");
    }
    if (previous != null && !NbdUri.isNbd(source)) {
      throw new BadInputException("--incremental needs an NBD SOURCE that exports the dirty bitmap " + bitmap);
    }
  }

  /**
   * Reads the dirty bitmap over a connection of its own, closed before SOURCE is opened for
   * reading (qemu-nbd serves one client at a time unless told otherwise).
   */
  DirtyClusters changed(String source, NbdOptions options, int clusterSize) {
    return DirtyBitmap.read(NbdUri.parse(source), options, bitmap, clusterSize);
  }
}
