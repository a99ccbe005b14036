package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.source.DirtyClusters;
import io.zcow.source.nbd.DirtyBitmap;
import io.zcow.source.nbd.NbdOptions;
import io.zcow.source.nbd.NbdUri;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * {@code --incremental PREV [--bitmap NAME]}: an overlay on PREV holding only what changed, by the
 * dirty bitmap NAME, or without it by comparing every cluster's digest with PREV's manifest.
 */
final class IncrementalCliOptions {
  @Option(names = "--incremental", paramLabel = "PREV", description = "Write TARGET as an incremental overlay on the qcow2 image PREV (the last link of the chain; named in TARGET relative to TARGET's directory; for backup --kafka, a path under the writer group's target root like TARGET): only the clusters that changed are stored: those --bitmap marks (only they are read), or without --bitmap those whose SHA-256 differs from PREV's digest manifest (every cluster is read and digested; any SOURCE).")
  Path previous;

  @Option(names = "--bitmap", paramLabel = "NAME", description = "The QEMU dirty bitmap of an NBD SOURCE (qemu:dirty-bitmap:NAME, e.g. qemu-nbd -B NAME) that recorded the changes since PREV.")
  String bitmap;

  /**
   * The checked request, or null without {@code --incremental}: --bitmap alone or a bitmap of a
   * source that is not NBD is refused, one line each. Without --bitmap: a digest incremental.
   */
  Request check(String source) {
    if (previous == null && bitmap != null) {
      throw new BadInputException("--bitmap needs --incremental PREV");
    }
    if (previous == null) {
      return null;
    }
    if (bitmap == null) {
      return new Request(previous, null, null);
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
   * @param bitmap null for a digest incremental (every cluster read, compared with PREV's manifest)
   */
  record Request(Path previous, String bitmap, NbdUri export) {
    boolean byDigest() {
      return bitmap == null;
    }

    /**
     * Digest incrementals: PREV's digest manifest, checked against PREV as it is now.
     *
     * @throws BadInputException when PREV has none or it does not match, naming the fix
     */
    io.zcow.qcow2.ManifestReader previousDigests() {
      return io.zcow.qcow2.ManifestReader.open(previous);
    }

    /**
     * Reads the dirty bitmap over a connection of its own, closed before SOURCE is opened for
     * reading (qemu-nbd serves one client at a time unless told otherwise).
     */
    DirtyClusters changed(NbdOptions options, int clusterSize) {
      return DirtyBitmap.read(export, options, bitmap, clusterSize);
    }
  }
}
