package io.zcow.qcow2;

import io.zcow.BadInputException;
import io.zcow.CorruptException;
import io.zcow.RetriableException;
import io.zcow.ZcowException;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Reads the guest data of a qcow2 image's active layer: unallocated and zero-flagged clusters read
 * as zeros, standard clusters from their host cluster, compressed clusters through {@link
 * PayloadDecoder} with the header's codec. Images with a backing file, encryption, an external
 * data file or extended L2 entries are refused; internal snapshots do not matter for the active
 * layer and are ignored.
 *
 * <p>Memory is bounded: the part of the L1 table the virtual size uses (at most 32 MiB) is read and
 * checked at open, L2 tables go through a small LRU, and there is one decoder with its buffers per
 * thread reading at once. Every inconsistency found is a {@link CorruptException} whose message
 * names the image, the offsets concerned (hex) and what is wrong; I/O failures are {@link
 * RetriableException}s. The image must not change while it is open.
 *
 * <p>Thread safe: {@link #read} may run concurrently from many threads. {@link #close} must not
 * race with reads. As with any {@link FileChannel}, interrupting a thread inside a read closes the
 * channel, and the reader is unusable afterwards.
 */
public final class ImageReader implements Closeable {
  /** L2 tables kept decoded: one covers 512 MiB of guest at 64 KiB clusters, 2 MiB at 4 KiB. */
  private static final long L2_CACHE_BYTES = 16L << 20;
  private static final int L2_CACHE_MAX_TABLES = 16;
  /** Enough for every field {@link Header#decode} looks at. */
  private static final int HEADER_READ = 512;
  private static final int SECTOR = 512;
  private static final ByteBuffer ZEROS = ByteBuffer.allocate(64 << 10).asReadOnlyBuffer();
  /** firstDifference compares this much at a time: a multiple of every cluster size. */
  private static final int COMPARE_CHUNK = 4 << 20;

  private final Path path;
  private final FileChannel channel;
  private final long fileSize;
  private final Header header;
  private final int clusterBits;
  private final int clusterSize;
  /** Checked L2 table offset for each L1 index the virtual size uses; 0 = no L2 table. */
  private final long[] l2Offsets;
  private final L2TableCache l2Cache;
  /** Decoders not in use; guarded by itself. */
  private final Deque<ClusterDecoding> idle = new ArrayDeque<>();
  private volatile boolean closed;

  private ImageReader(Path path, FileChannel channel) {
    this.path = path;
    this.channel = channel;
    try {
      this.fileSize = channel.size();
    } catch (IOException e) {
      throw new RetriableException(path + ": cannot get the file size: " + e.getMessage(), e);
    }
    ByteBuffer head = ByteBuffer.allocate((int) Math.min(fileSize, HEADER_READ));
    readFully(head, 0, "the header");
    this.header = withPath(() -> Header.decode(head.flip()));
    if (header.backingFileOffset() != 0) {
      throw new BadInputException(String.format(
          "%s has a backing file (backing_file_offset 0x%x at header offset 0x8): zcow reads standalone"
              + " images only; flatten it first with qemu-img convert", path, header.backingFileOffset()));
    }
    this.clusterBits = header.clusterBits();
    this.clusterSize = header.clusterSize();
    this.l2Offsets = readL1();
    int tables = (int) Math.max(2, Math.min(L2_CACHE_MAX_TABLES, L2_CACHE_BYTES / clusterSize));
    this.l2Cache = new L2TableCache(tables, this::loadL2);
  }

  /**
   * Opens {@code image} for reading and checks its header and L1 table.
   *
   * @throws BadInputException when the file cannot be opened or has a backing file
   * @throws CorruptException when the header or the L1 table is corrupt or uses features zcow
   *     cannot read
   */
  public static ImageReader open(Path image) {
    FileChannel ch;
    try {
      ch = FileChannel.open(image, StandardOpenOption.READ);
    } catch (IOException e) {
      throw new BadInputException("cannot open image " + image + ": " + reason(e), e);
    }
    try {
      return new ImageReader(image, ch);
    } catch (RuntimeException e) {
      try {
        ch.close();
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
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
      throw new IllegalStateException(path + " is closed");
    }
    int length = dst.remaining();
    if (guestOffset < 0 || guestOffset > virtualSize() - length) {
      throw new IllegalArgumentException(String.format(
          "read of %d bytes at guest 0x%x is outside the virtual size 0x%x of %s",
          length, guestOffset, virtualSize(), path));
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
    int l2Entries = clusterSize / 8;
    long l2Offset = l2Offsets[(int) (cluster / l2Entries)];
    if (l2Offset == 0) {
      fillZeros(dst);
      return;
    }
    int index = (int) (cluster % l2Entries);
    long entry = l2Cache.get(l2Offset)[index];
    long location = l2Offset + 8L * index;
    if (L2Entry.isCompressed(entry)) {
      readCompressed(entry, location, cluster, within, dst);
    } else {
      readStandard(entry, location, cluster, within, dst);
    }
  }

  private void readStandard(long entry, long location, long cluster, int within, ByteBuffer dst) {
    long host = withPath(() -> L2Entry.standardOffset(entry, location));
    // Offset 0 reads as unallocated even with the copied bit set, as in QEMU: the spec allows
    // that combination only with an external data file, which the header check refused.
    if ((entry & L2Entry.ZERO) != 0 || host == 0) {
      fillZeros(dst);
      return;
    }
    long guest = cluster << clusterBits;
    if ((host & (clusterSize - 1)) != 0) {
      throw corrupt("data cluster offset 0x%x in L2 entry at 0x%x (guest 0x%x) is not cluster-aligned",
          host, location, guest);
    }
    // QEMU writes only the visible part of a partial last cluster, so the file may end there.
    long visible = Math.min(clusterSize, virtualSize() - guest);
    if (pastEnd(host, visible)) {
      throw corrupt("data cluster at 0x%x (guest 0x%x, L2 entry at 0x%x) lies past the end of the file (size 0x%x)",
          host, guest, location, fileSize);
    }
    readFully(dst, host + within, "data cluster of guest 0x" + Long.toHexString(guest));
  }

  private void readCompressed(long entry, long location, long cluster, int within, ByteBuffer dst) {
    long guest = cluster << clusterBits;
    if ((entry & L2Entry.COPIED) != 0) {
      throw corrupt("compressed L2 entry 0x%x at 0x%x (guest 0x%x) has the copied bit 63 set",
          entry, location, guest);
    }
    long host = L2Entry.compressedOffset(entry, clusterBits);
    if (host >= L2Entry.MAX_HOST_OFFSET) {
      throw corrupt("compressed L2 entry 0x%x at 0x%x (guest 0x%x) has offset bits above 55 set",
          entry, location, guest);
    }
    int length = L2Entry.compressedReadLength(entry, clusterBits);
    // QEMU appends compressed payloads byte by byte, so the file may end inside the last sector a
    // payload touches (that tail reads as zeros); any sector wholly past the end is corruption.
    long fileEnd = (fileSize + SECTOR - 1) & -SECTOR;
    if (host >= fileSize || host + length > fileEnd) {
      throw corrupt("compressed payload at 0x%x (%d bytes, guest 0x%x, L2 entry at 0x%x) lies past the end"
          + " of the file (size 0x%x)", host, length, guest, location, fileSize);
    }
    int available = (int) Math.min(length, fileSize - host);
    ClusterDecoding d = takeDecoding();
    try {
      if (d.cluster != cluster) {
        d.cluster = -1;
        ByteBuffer payload = d.payload(available);
        readFully(payload, host, "compressed payload of guest 0x" + Long.toHexString(guest));
        String where = "cluster at guest offset 0x" + Long.toHexString(guest) + " (host offset 0x"
            + Long.toHexString(host) + ", L2 entry at 0x" + Long.toHexString(location) + ")";
        withPath(() -> {
          d.decoder.decode(header.codec(), payload.flip(), d.out, where);
          return null;
        });
        d.cluster = cluster;
      }
      dst.put(d.out.slice(within, dst.remaining()));
    } finally {
      release(d);
    }
  }

  private long[] readL1() {
    long virtualSize = header.virtualSize();
    int l1Size = header.l1Size();
    long l1Offset = header.l1TableOffset();
    if (virtualSize < 0) {
      throw corrupt("virtual size 0x%x at header offset 0x18 is negative", virtualSize);
    }
    if (l1Size < 0 || l1Size > ImageGeometry.MAX_L1_BYTES / 8) {
      throw corrupt("l1_size %d at header offset 0x24 is outside 0..%d (QEMU's 32 MiB L1 limit)",
          l1Size, ImageGeometry.MAX_L1_BYTES / 8);
    }
    long needed = ceilDiv(ceilDiv(virtualSize, clusterSize), clusterSize / 8);
    if (l1Size < needed) {
      throw corrupt("l1_size %d at header offset 0x24 is too small for virtual size 0x%x (needs %d entries)",
          l1Size, virtualSize, needed);
    }
    if (l1Size > 0 && (l1Offset & (clusterSize - 1)) != 0) {
      throw corrupt("L1 table offset 0x%x at header offset 0x28 is not cluster-aligned", l1Offset);
    }
    if (l1Size > 0 && pastEnd(l1Offset, 8L * l1Size)) {
      throw corrupt("L1 table at 0x%x (l1_size %d) lies past the end of the file (size 0x%x)",
          l1Offset, l1Size, fileSize);
    }
    // Entries past what the virtual size uses are never read (snapshots may keep VM state there).
    ByteBuffer raw = ByteBuffer.allocate((int) needed * 8);
    readFully(raw, l1Offset, "the L1 table");
    raw.flip();
    long[] offsets = new long[(int) needed];
    for (int i = 0; i < offsets.length; i++) {
      long location = l1Offset + 8L * i;
      long entry = raw.getLong();
      long l2 = withPath(() -> L2Entry.l2TableOffset(entry, location));
      if (l2 != 0 && (l2 & (clusterSize - 1)) != 0) {
        throw corrupt("L2 table offset 0x%x in L1 entry at 0x%x is not cluster-aligned", l2, location);
      }
      if (l2 != 0 && pastEnd(l2, clusterSize)) {
        throw corrupt("L2 table at 0x%x (L1 entry at 0x%x) lies past the end of the file (size 0x%x)",
            l2, location, fileSize);
      }
      offsets[i] = l2;
    }
    return offsets;
  }

  private long[] loadL2(long offset) {
    ByteBuffer b = ByteBuffer.allocate(clusterSize);
    readFully(b, offset, "L2 table");
    long[] table = new long[clusterSize / 8];
    b.flip().asLongBuffer().get(table);
    return table;
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
    FileChannel source;
    try {
      source = FileChannel.open(raw, StandardOpenOption.READ);
    } catch (IOException e) {
      throw new BadInputException("cannot open " + raw + ": " + reason(e), e);
    }
    try (source; ImageReader reader = open(image)) {
      long rawSize = source.size(); // not Files.size(): that is 0 for a block device
      long virtualSize = reader.virtualSize();
      long common = Math.min(rawSize, virtualSize);
      ByteBuffer expected = ByteBuffer.allocate(COMPARE_CHUNK);
      ByteBuffer actual = ByteBuffer.allocate(COMPARE_CHUNK);
      for (long pos = 0; pos < common; pos += expected.limit()) {
        int n = (int) Math.min(COMPARE_CHUNK, common - pos);
        expected.clear().limit(n);
        readRaw(source, raw, expected, pos);
        actual.clear().limit(n);
        reader.read(pos, actual);
        int m = expected.flip().mismatch(actual.flip());
        if (m >= 0) {
          return pos + m;
        }
      }
      if (virtualSize < rawSize) {
        return virtualSize;
      }
      long rounded = (rawSize + SECTOR - 1) & -SECTOR;
      long tailEnd = Math.min(virtualSize, rounded);
      if (tailEnd > rawSize) {
        ByteBuffer tail = ByteBuffer.allocate((int) (tailEnd - rawSize));
        reader.read(rawSize, tail);
        int m = tail.flip().mismatch(ZEROS.duplicate().limit(tail.limit()));
        if (m >= 0) {
          return rawSize + m;
        }
      }
      return virtualSize > rounded ? rounded : -1;
    } catch (IOException e) {
      throw new RetriableException("comparing " + raw + " with " + image + " failed: " + e.getMessage(), e);
    }
  }

  private static void readRaw(FileChannel source, Path raw, ByteBuffer dst, long position) throws IOException {
    long p = position;
    while (dst.hasRemaining()) {
      int n = source.read(dst, p);
      if (n < 0) {
        throw new ZcowException(String.format("%s ended at 0x%x while it was compared: did it shrink?", raw, p));
      }
      p += n;
    }
  }

  private void readFully(ByteBuffer dst, long position, String what) {
    long p = position;
    while (dst.hasRemaining()) {
      int n;
      try {
        n = channel.read(dst, p);
      } catch (IOException e) {
        throw new RetriableException(
            String.format("%s: reading %s at 0x%x failed: %s", path, what, p, e), e);
      }
      if (n < 0) {
        // Checked against the size at open: the file shrank since.
        throw corrupt("%s at 0x%x runs past the end of the file at 0x%x", what, position, p);
      }
      p += n;
    }
  }

  private ClusterDecoding takeDecoding() {
    synchronized (idle) {
      ClusterDecoding d = idle.pollFirst();
      if (d != null) {
        return d;
      }
    }
    return new ClusterDecoding(clusterSize);
  }

  private void release(ClusterDecoding d) {
    synchronized (idle) {
      if (!closed) {
        idle.addFirst(d);
        return;
      }
    }
    d.close();
  }

  /** True when [offset, offset + length) does not lie within the file; safe against overflow. */
  private boolean pastEnd(long offset, long length) {
    return offset < 0 || length > fileSize || offset > fileSize - length;
  }

  private CorruptException corrupt(String format, Object... args) {
    return new CorruptException(path + ": " + String.format(format, args));
  }

  /** Runs a format-level decode and names the image in any corruption it reports. */
  private <T> T withPath(java.util.function.Supplier<T> decode) {
    try {
      return decode.get();
    } catch (CorruptException e) {
      throw new CorruptException(path + ": " + e.getMessage(), e);
    }
  }

  private static long ceilDiv(long a, long b) {
    return a / b + (a % b == 0 ? 0 : 1);
  }

  private static void fillZeros(ByteBuffer dst) {
    while (dst.hasRemaining()) {
      dst.put(ZEROS.duplicate().limit(Math.min(dst.remaining(), ZEROS.capacity())));
    }
  }

  private static String reason(IOException e) {
    if (e instanceof NoSuchFileException) {
      return "no such file";
    }
    if (e instanceof AccessDeniedException) {
      return "permission denied";
    }
    return e.getMessage() != null ? e.getMessage() : e.toString();
  }

  @Override
  public void close() {
    closed = true;
    synchronized (idle) {
      for (ClusterDecoding d : idle) {
        d.close();
      }
      idle.clear();
    }
    try {
      channel.close();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * One thread's decoder and buffers, remembering the last cluster it decoded so that small
   * sequential reads inside one compressed cluster decode it once.
   */
  private static final class ClusterDecoding implements AutoCloseable {
    final PayloadDecoder decoder;
    final ByteBuffer out;
    ByteBuffer payload;
    long cluster = -1;

    ClusterDecoding(int clusterSize) {
      decoder = new PayloadDecoder(clusterSize);
      out = ByteBuffer.allocate(clusterSize);
      payload = ByteBuffer.allocate(clusterSize + SECTOR);
    }

    /** A cleared buffer of exactly {@code length} bytes (a payload may touch up to two clusters). */
    ByteBuffer payload(int length) {
      if (payload.capacity() < length) {
        payload = ByteBuffer.allocate(length);
      }
      return payload.clear().limit(length);
    }

    @Override
    public void close() {
      decoder.close();
    }
  }
}
