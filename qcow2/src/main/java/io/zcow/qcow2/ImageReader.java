package io.zcow.qcow2;

import io.zcow.BadInputException;
import io.zcow.CorruptException;
import io.zcow.RetriableException;
import java.io.Closeable;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads the guest data of a qcow2 image's active layer: zero-flagged clusters read as zeros,
 * standard clusters from their host cluster, compressed clusters through {@link PayloadDecoder}
 * with the header's codec, unallocated clusters from the backing file (a qcow2 image, opened the
 * same way: a chain) or as zeros without one, and past a shorter backing file's end. A relative
 * backing name is resolved against the image's directory, as QEMU does. Images with encryption,
 * an external data file or extended L2 entries are refused, as is a backing file whose format
 * extension names another format than qcow2, or a chain deeper than {@value #MAX_CHAIN}; internal
 * snapshots do not matter for the active layer and are ignored.
 *
 * <p>Memory is bounded: the part of the L1 table the virtual size uses (at most 32 MiB) is read and
 * checked at open, L2 tables go through a small LRU, and each thread reading at once borrows one
 * decoder with its buffers. Every inconsistency found is a {@link CorruptException} whose message
 * names the image, the offsets concerned (hex) and what is wrong; I/O failures are {@link
 * RetriableException}s. The image must not change while it is open.
 *
 * <p>Thread safe: {@link #read} may run concurrently from many threads. {@link #close} must not
 * race with reads. As with any {@link FileChannel}, interrupting a thread inside a read closes the
 * channel, and the reader is unusable afterwards.
 */
public final class ImageReader implements Closeable {
  /** Enough for every field {@link Header#decode} looks at. */
  private static final int HEADER_READ = 512;
  private static final int SECTOR = 512;
  private static final ByteBuffer ZEROS = ByteBuffer.allocate(64 << 10).asReadOnlyBuffer();
  /** A guard against a chain that names itself (directly or around a loop), not a QEMU limit. */
  static final int MAX_CHAIN = 64;

  private final ImageFile file;
  private final Header header;
  private final int clusterBits;
  private final int clusterSize;
  private final ClusterMap map;
  private final DecoderPool decoders;
  private final ImageReader backing; // null without a backing file
  private volatile boolean closed;

  private ImageReader(ImageFile file, int depth) {
    this.file = file;
    ByteBuffer head = ByteBuffer.allocate((int) Math.min(file.size(), HEADER_READ));
    file.readFully(head, 0, "the header");
    this.header = file.named(() -> Header.decode(head.flip()));
    this.clusterBits = header.clusterBits();
    this.clusterSize = header.clusterSize();
    this.map = new ClusterMap(file, header);
    this.decoders = new DecoderPool(clusterSize);
    if (header.backingFileOffset() != 0) {
      try {
        this.backing = openBacking(file, header, head, depth);
      } catch (RuntimeException e) {
        decoders.close();
        throw e;
      }
    } else {
      this.backing = null;
    }
  }

  private static ImageReader openBacking(ImageFile file, Header header, ByteBuffer head, int depth) {
    if (depth >= MAX_CHAIN) {
      throw new BadInputException(file.path() + ": the backing chain is deeper than " + MAX_CHAIN
          + " images (does it loop?)");
    }
    int size = head.getInt(16);
    long offset = header.backingFileOffset();
    if (size <= 0 || size > BackingFile.MAX_NAME_BYTES || file.pastEnd(offset, size)) {
      throw file.corrupt("backing file name of %d bytes at 0x%x (header offsets 0x8, 0x10) does not fit the"
          + " file or the 1..%d bytes qcow2 allows", size, offset, BackingFile.MAX_NAME_BYTES);
    }
    ByteBuffer name = ByteBuffer.allocate(size);
    file.readFully(name, offset, "the backing file name");
    String format = backingFormat(file, header);
    if (format != null && !format.equals("qcow2")) {
      throw new BadInputException(file.path() + ": its backing file is of format " + format
          + " (extension 0xe2792aca); zcow reads qcow2 chains only");
    }
    Path own = Path.of(new String(name.array(), StandardCharsets.UTF_8));
    Path dir = file.path().toAbsolutePath().getParent();
    Path resolved = own.isAbsolute() || dir == null ? own : dir.resolve(own);
    if (!Files.isRegularFile(resolved)) {
      throw new BadInputException(file.path() + " backs onto " + own + ", which is missing (" + resolved
          + "): its chain is broken");
    }
    ImageFile next = ImageFile.open(resolved);
    try {
      return new ImageReader(next, depth + 1);
    } catch (RuntimeException e) {
      try {
        next.close();
      } catch (RuntimeException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
  }

  /**
   * The backing-format extension's value (qcow2.txt "Header extensions": type, length, data padded
   * to 8, from header_length on, ended by type 0, inside the first cluster), or null without one.
   */
  private static String backingFormat(ImageFile file, Header header) {
    int start = header.version() == 2 ? 72 : header.headerLength();
    long end = Math.min(file.size(), header.clusterSize());
    if (start >= end) {
      return null;
    }
    ByteBuffer ext = ByteBuffer.allocate((int) (end - start));
    file.readFully(ext, start, "the header extensions");
    ext.flip();
    while (ext.remaining() >= 8) {
      int type = ext.getInt();
      int length = ext.getInt();
      if (type == 0) {
        return null;
      }
      if (length < 0 || length > ext.remaining()) {
        throw file.corrupt("header extension 0x%08x at 0x%x has length %d past the first cluster", type,
            start + ext.position() - 8, length);
      }
      if (type == BackingFile.EXT_BACKING_FORMAT) {
        byte[] b = new byte[length];
        ext.get(b);
        return new String(b, StandardCharsets.US_ASCII);
      }
      ext.position(Math.min(ext.limit(), ext.position() + ((length + 7) & ~7)));
    }
    return null;
  }

  /**
   * Opens {@code image} for reading and checks its header and L1 table.
   *
   * @throws BadInputException when the file or a backing file of its chain cannot be opened
   * @throws CorruptException when the header or the L1 table is corrupt or uses features zcow
   *     cannot read
   */
  public static ImageReader open(Path image) {
    ImageFile file = ImageFile.open(image);
    try {
      return new ImageReader(file, 0);
    } catch (RuntimeException e) {
      try {
        file.close();
      } catch (RuntimeException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
  }

  /**
   * The first guest offset where {@code image} does not read back as the raw file {@code raw}, or
   * -1 when it does. The virtual size must be the raw size rounded up to 512, and the bytes of
   * that rounding must read as zeros; a shorter image differs at its virtual size, a longer one at
   * the rounded raw size. {@code raw} may be a block device.
   *
   * @throws CorruptException when the image is corrupt where it is read
   */
  public static long firstDifference(Path raw, Path image) {
    return ImageComparison.firstDifference(raw, image);
  }

  /** As {@link #firstDifference(Path, Path)}, with any {@link io.zcow.source.Source} (an NBD export) as the raw side. */
  public static long firstDifference(io.zcow.source.Source raw, Path image) {
    return ImageComparison.firstDifference(raw, image);
  }

  public Header header() {
    return header;
  }

  public long virtualSize() {
    return header.virtualSize();
  }

  /**
   * Fills the remaining bytes of {@code dst} with guest data from {@code guestOffset}. On success
   * dst's position is at its limit; on failure it has not moved (its content is unspecified).
   *
   * @throws IllegalArgumentException when the range is not within the virtual size
   * @throws CorruptException when the metadata or a payload needed for the range is corrupt
   */
  public void read(long guestOffset, ByteBuffer dst) {
    if (closed) {
      throw new IllegalStateException(file.path() + " is closed");
    }
    int length = dst.remaining();
    if (guestOffset < 0 || guestOffset > virtualSize() - length) {
      throw new IllegalArgumentException(String.format(
          "read of %d bytes at guest 0x%x is outside the virtual size 0x%x of %s",
          length, guestOffset, virtualSize(), file.path()));
    }
    ByteBuffer out = dst.duplicate();
    long pos = guestOffset;
    while (out.hasRemaining()) {
      int within = (int) (pos & (clusterSize - 1));
      int n = Math.min(out.remaining(), clusterSize - within);
      readCluster(pos >>> clusterBits, within, out.slice(out.position(), n));
      out.position(out.position() + n);
      pos += n;
    }
    dst.position(dst.limit());
  }

  private void readCluster(long cluster, int within, ByteBuffer dst) {
    ClusterMap.Lookup l = map.lookup(cluster);
    if (L2Entry.isCompressed(l.entry())) {
      readCompressed(l.entry(), l.location(), cluster, within, dst);
    } else {
      readStandard(l.entry(), l.location(), cluster, within, dst);
    }
  }

  private void readStandard(long entry, long location, long cluster, int within, ByteBuffer dst) {
    long host = file.named(() -> L2Entry.standardOffset(entry, location));
    // Offset 0 reads as unallocated even with the copied bit set, as in QEMU: the spec allows
    // that combination only with an external data file, which the header check refused.
    if ((entry & L2Entry.ZERO) != 0) {
      fillZeros(dst);
      return;
    }
    long guest = cluster << clusterBits;
    if (host == 0) {
      readBacking(guest + within, dst);
      return;
    }
    if ((host & (clusterSize - 1)) != 0) {
      throw file.corrupt("data cluster offset 0x%x in L2 entry at 0x%x (guest 0x%x) is not cluster-aligned",
          host, location, guest);
    }
    // QEMU writes only the visible part of a partial last cluster, so the file may end there.
    long visible = Math.min(clusterSize, virtualSize() - guest);
    if (file.pastEnd(host, visible)) {
      throw file.corrupt("data cluster at 0x%x (guest 0x%x, L2 entry at 0x%x) lies past the end of the file"
          + " (size 0x%x)", host, guest, location, file.size());
    }
    file.readFully(dst, host + within, "data cluster of guest 0x" + Long.toHexString(guest));
  }

  private void readCompressed(long entry, long location, long cluster, int within, ByteBuffer dst) {
    long guest = cluster << clusterBits;
    if ((entry & L2Entry.COPIED) != 0) {
      throw file.corrupt("compressed L2 entry 0x%x at 0x%x (guest 0x%x) has the copied bit 63 set",
          entry, location, guest);
    }
    long host = L2Entry.compressedOffset(entry, clusterBits);
    if (host >= L2Entry.MAX_HOST_OFFSET) {
      throw file.corrupt("compressed L2 entry 0x%x at 0x%x (guest 0x%x) has offset bits above 55 set",
          entry, location, guest);
    }
    int length = L2Entry.compressedReadLength(entry, clusterBits);
    // QEMU appends compressed payloads byte by byte, so the file may end inside the last sector a
    // payload touches (that tail reads as zeros); any sector wholly past the end is corruption.
    long fileEnd = (file.size() + SECTOR - 1) & -SECTOR;
    if (host >= file.size() || host + length > fileEnd) {
      throw file.corrupt("compressed payload at 0x%x (%d bytes, guest 0x%x, L2 entry at 0x%x) lies past the"
          + " end of the file (size 0x%x)", host, length, guest, location, file.size());
    }
    DecoderPool.Decoding d = decoders.take();
    try {
      if (d.cluster != cluster) {
        d.cluster = -1;
        ByteBuffer payload = d.payload((int) Math.min(length, file.size() - host));
        file.readFully(payload, host, "compressed payload of guest 0x" + Long.toHexString(guest));
        String where = "cluster at guest offset 0x" + Long.toHexString(guest) + " (host offset 0x"
            + Long.toHexString(host) + ", L2 entry at 0x" + Long.toHexString(location) + ")";
        file.named(() -> {
          d.decoder.decode(header.codec(), payload.flip(), d.out, where);
          return null;
        });
        d.cluster = cluster;
      }
      dst.put(d.out.slice(within, dst.remaining()));
    } finally {
      decoders.release(d);
    }
  }

  /** Unallocated: the backing file's data where it has any, zeros past its end or without one. */
  private void readBacking(long guestOffset, ByteBuffer dst) {
    if (backing != null && guestOffset < backing.virtualSize()) {
      int n = (int) Math.min(dst.remaining(), backing.virtualSize() - guestOffset);
      backing.read(guestOffset, dst.slice(dst.position(), n));
      dst.position(dst.position() + n);
    }
    fillZeros(dst);
  }

  private static void fillZeros(ByteBuffer dst) {
    while (dst.hasRemaining()) {
      dst.put(ZEROS.duplicate().limit(Math.min(dst.remaining(), ZEROS.capacity())));
    }
  }

  @Override
  public void close() {
    closed = true;
    try {
      decoders.close();
    } finally {
      try {
        file.close();
      } finally {
        if (backing != null) {
          backing.close();
        }
      }
    }
  }
}
