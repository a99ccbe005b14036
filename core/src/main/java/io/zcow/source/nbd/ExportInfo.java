package io.zcow.source.nbd;

/**
 * What the handshake settled about an export.
 *
 * @param size the export's size in bytes
 * @param flags the transmission flags
 * @param minBlock the minimum block size (requests are multiples of it, at offsets that are); 1 when unstated
 * @param preferredBlock the preferred block size; 4096 when unstated
 * @param maxPayload the largest read the server accepts; 32 MiB when unstated
 * @param blockSizesStated the server sent NBD_INFO_BLOCK_SIZE
 * @param structuredReplies NBD_OPT_STRUCTURED_REPLY was acknowledged
 * @param allocationContext the id of {@code base:allocation}; -1 when the server offers none
 * @param tls the connection is encrypted
 * @param bitmapContext the id of {@code qemu:dirty-bitmap:NAME} when a bitmap was asked for; -1 otherwise
 */
record ExportInfo(long size, int flags, int minBlock, int preferredBlock, int maxPayload, boolean blockSizesStated,
    boolean structuredReplies, long allocationContext, boolean tls, long bitmapContext) {

  boolean readOnly() {
    return (flags & Nbd.TFLAG_READ_ONLY) != 0;
  }

  boolean multiConn() {
    return (flags & Nbd.TFLAG_CAN_MULTI_CONN) != 0;
  }

  boolean hasAllocation() {
    return allocationContext >= 0;
  }

  /** Bytes per read request: at most {@code wanted}, the server's maximum, and a multiple of its minimum block. */
  int requestSize(int wanted) {
    int n = Math.min(wanted, maxPayload);
    n -= n % minBlock;
    return Math.max(n, minBlock);
  }
}
