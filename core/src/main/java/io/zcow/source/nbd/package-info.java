/**
 * An NBD client of zcow's own (the protocol of doc/proto.md in the NBD project) and the
 * {@link io.zcow.source.nbd.NbdSource} built on it. Read it in this order:
 *
 * <ul>
 *   <li>{@link io.zcow.source.nbd.NbdUri} where an export is; {@link io.zcow.source.nbd.NbdOptions}
 *       and {@link io.zcow.source.nbd.NbdTls} how it is reached;
 *   <li>{@code Transports}, {@code ChannelTransport}, {@code SocketTransport}: the byte stream
 *       (channels for plain TCP and Unix sockets, a socket JSSE can wrap after STARTTLS);
 *   <li>{@code Handshake}: fixed newstyle negotiation up to NBD_OPT_GO, under a watchdog;
 *       {@code ExportInfo} what it settles;
 *   <li>{@code NbdConnection}: the transmission phase, requests by cookie, structured replies
 *       read by a thread of the connection's own straight into the caller's buffer;
 *   <li>{@code ConnectionPool}: a connection per reading thread; {@code AllocationMap}:
 *       SEEK_DATA/SEEK_HOLE from {@code base:allocation} (only NBD_STATE_ZERO is a hole);
 *   <li>{@link io.zcow.source.nbd.DirtyBitmap}: a QEMU dirty bitmap ({@code
 *       qemu:dirty-bitmap:NAME}) read on a connection of its own into {@link
 *       io.zcow.source.DirtyClusters}, for incremental images.
 * </ul>
 */
package io.zcow.source.nbd;
