package io.zcow.source.nbd;

import io.zcow.RetriableException;
import io.zcow.source.DirtyClusters;
import java.util.List;
import java.util.Objects;

/**
 * Reads a QEMU dirty bitmap through NBD: the meta context {@code qemu:dirty-bitmap:NAME} that
 * {@code qemu-nbd -B NAME} (or an NBD export of a running VM with the bitmap) offers, walked with
 * NBD_CMD_BLOCK_STATUS from the start of the export to its end. A reply may cover less than asked
 * (the walk goes on from where it stopped) or run past it (cut at the export's end). The
 * bitmap's granularity is rounded out to whole clusters.
 *
 * <p>Uses one connection of its own and closes it before returning: qemu-nbd serves one client
 * at a time unless told otherwise, so read the bitmap before opening the export for reading.
 */
public final class DirtyBitmap {
  /** Asked of the server at once: large, within the request's 32-bit length. */
  static final long QUERY_BYTES = 1L << 30;

  private DirtyBitmap() {}

  /**
   * The clusters of {@code clusterSize} bytes the bitmap {@code name} marks dirty.
   *
   * @throws io.zcow.BadInputException the export cannot be reached, or has no such bitmap
   * @throws RetriableException the connection failed or the server broke the protocol
   */
  public static DirtyClusters read(NbdUri uri, NbdOptions options, String name, int clusterSize) {
    Objects.requireNonNull(name, "name");
    if (name.isEmpty()) {
      throw new IllegalArgumentException("bitmap name must not be empty");
    }
    try (NbdConnection c = NbdConnection.open(uri, options, name)) {
      long size = c.info().size();
      DirtyClusters.Builder dirty = DirtyClusters.builder(size, clusterSize);
      long pos = 0;
      while (pos < size) {
        long length = Math.min(size - pos, QUERY_BYTES);
        String what = "dirty bitmap " + name + " status of " + length + " bytes at 0x" + Long.toHexString(pos);
        List<Extent> extents = c.await(c.dirtyStatus(pos, length), what);
        for (Extent e : extents) {
          if (e.offset() >= size) {
            break;
          }
          if (e.dirty()) {
            dirty.add(e.offset(), Math.min(e.end(), size) - e.offset());
          }
        }
        long next = extents.get(extents.size() - 1).end();
        if (next <= pos) {
          throw new RetriableException(uri.describe() + ": the " + what + " made no progress", null);
        }
        pos = next;
      }
      return dirty.build();
    }
  }
}
