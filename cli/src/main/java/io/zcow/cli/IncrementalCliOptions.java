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

  /**
   * The checked pair, or null without {@code --incremental}: a half-given pair or a source
   * without a dirty bitmap is refused, one line each.
   */
  Request check(String source) {
    if ((previous == null) != (bitmap == null)) {
      throw new BadInputException("--incremental and --bitmap go together");
    }
    if (previous == null) {
      return null;
    }
    if (!NbdUri.isNbd(source)) {
      throw new BadInputException("--incremental needs an NBD SOURCE that exports the dirty bitmap " + bitmap);
    }
    return new Request(previous, bitmap, NbdUri.parse(source));
  }

  /**
   * An incremental image asked for: PREV, the bitmap and the NBD export that has it.
   *
   * @param previous the previous image as given (a local path, or with --kafka one under the
   *     writer group's target root)
   */
  record Request(Path previous, String bitmap, NbdUri export) {
    /**
     * Reads the dirty bitmap over a connection of its own, closed before SOURCE is opened for
     * reading (qemu-nbd serves one client at a time unless told otherwise).
     */
    DirtyClusters changed(NbdOptions options, int clusterSize) {
      return DirtyBitmap.read(export, options, bitmap, clusterSize);
    }
  }
}
