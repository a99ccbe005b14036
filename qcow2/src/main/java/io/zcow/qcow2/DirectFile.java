package io.zcow.qcow2;

import com.sun.jna.LastErrorException;
import com.sun.nio.file.ExtendedOpenOption;
import io.zcow.BadInputException;
import io.zcow.TargetIoException;
import io.zcow.io.Aligned;
import io.zcow.source.LibC;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A file opened for positional I/O, with O_DIRECT where asked and possible.
 *
 * <p>In direct mode every write and read must be aligned to {@link #alignment()} in file offset,
 * length and buffer address ({@link #allocateAligned}); the JDK refuses anything else. Thread safe:
 * positional reads and writes do not share a channel position.
 */
public final class DirectFile implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(DirectFile.class);
  /** Never align to less than a page: some devices report 512 but O_DIRECT wants more. */
  public static final int MIN_ALIGNMENT = Aligned.MIN_ALIGNMENT;

  /**
   * The fence: one byte far past any real end of file. QEMU takes byte locks near the start of an
   * image, so a whole-file lock would make even {@code qemu-img check -U} fail.
   */
  public static final long FENCE_OFFSET = 1L << 62;

  private final Path path;
  private final FileChannel channel;
  private java.nio.channels.FileLock fence;
  private Object fenceKey;
  /** Files fenced by writers of this JVM (by device and inode), so none opens a second channel. */
  private static final java.util.concurrent.ConcurrentHashMap<Object, DirectFile> FENCED =
      new java.util.concurrent.ConcurrentHashMap<>();
  private final boolean direct;
  private final int alignment;
  private final java.util.concurrent.atomic.LongAdder writes = new java.util.concurrent.atomic.LongAdder();
  private final java.util.concurrent.atomic.LongAdder bytesWritten = new java.util.concurrent.atomic.LongAdder();
  /**
   * The first failed fdatasync, after which this file is never synced again: Linux may have
   * dropped the dirty pages and marked them clean, so a later fdatasync that succeeds proves
   * nothing. The image resumes from its last checkpoint instead.
   */
  private volatile TargetIoException syncFailed;
  /** Asked before every write; a refusal issues nothing (see {@link #guardWrites}). */
  private volatile java.util.function.BooleanSupplier mayWrite = () -> true;

  private DirectFile(Path path, FileChannel channel, boolean direct, int alignment) {
    this.path = path;
    this.channel = channel;
    this.direct = direct;
    this.alignment = alignment;
  }

  private static void refuseSymlink(Path path) {
    if (Files.isSymbolicLink(path)) {
      throw new BadInputException(path + " is a symlink: an image is never written through one");
    }
  }

  /**
   * Opens {@code path} for reading and writing; a symlink at {@code path} is refused (O_NOFOLLOW).
   *
   * @param create create the file; fails if it exists
   * @param mode {@link TargetCache#AUTO} falls back to writeback with a warning where the file
   *     system refuses O_DIRECT; {@link TargetCache#DIRECT} then fails with a {@link
   *     BadInputException}
   */
  public static DirectFile open(Path path, TargetCache mode, boolean create) {
    return open(path, path, mode, create, true);
  }

  /**
   * As {@link #open}, for a path checked to lie where it is (the writer's target root): the file
   * is opened through libc with O_NOFOLLOW, and the path of the open descriptor
   * ({@code /proc/self/fd/N}) must be exactly {@code path}, absolute and without a symlink in any
   * component, or it is closed and refused before anything is read or written. So a directory of
   * the path swapped for a symlink between the caller's check and the open is refused as well as
   * the file itself. Where libc cannot be used, as {@link #open}.
   *
   * @throws BadInputException when the file opened is not at {@code path}
   */
  public static DirectFile openExact(Path path, TargetCache mode, boolean create) {
    LibC libc = LibC.instance();
    int noFollow = LibC.noFollow();
    if (libc == null || noFollow == 0) {
      return open(path, mode, create);
    }
    Path expected = path.toAbsolutePath().normalize();
    int fd;
    try {
      fd = libc.open(expected.toString(), LibC.O_RDWR | noFollow | (create ? LibC.O_CREAT | LibC.O_EXCL : 0), 0666);
    } catch (LastErrorException e) {
      switch (e.getErrorCode()) {
        case LibC.ELOOP -> throw new BadInputException(path + " is a symlink: an image is never written through one");
        case LibC.EEXIST -> throw new UncheckedIOException(new java.nio.file.FileAlreadyExistsException(path.toString()));
        case LibC.ENOENT -> throw new UncheckedIOException(new java.nio.file.NoSuchFileException(path.toString()));
        default -> throw new UncheckedIOException("cannot open " + path + ": " + e.getMessage(),
            new IOException(e.getMessage(), e));
      }
    }
    Path descriptor = Path.of("/proc/self/fd/" + fd);
    boolean ok = false;
    try {
      Path opened = Files.readSymbolicLink(descriptor);
      if (!opened.equals(expected)) {
        if (create && sameFile(descriptor, opened)) {
          Files.deleteIfExists(opened); // ours: created by this open, empty
        }
        throw new BadInputException(path + " was opened at " + opened + ": a directory of its path is a symlink"
            + " (swapped in after the target was checked?); an image is written only where it was checked to be");
      }
      // The descriptor's magic link opens this very file again, whatever its path does meanwhile.
      DirectFile file = open(descriptor, path, mode, false, false);
      ok = true;
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot check where " + path + " was opened: " + e.getMessage(), e);
    } finally {
      if (!ok && create) {
        deleteIfSame(descriptor, expected);
      }
      try {
        libc.close(fd);
      } catch (LastErrorException ignored) {
        // the descriptor was ours and is gone either way
      }
    }
  }

  private static boolean sameFile(Path descriptor, Path other) {
    try {
      Object key = Files.readAttributes(descriptor, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
      return key != null && key.equals(Files.readAttributes(other, java.nio.file.attribute.BasicFileAttributes.class,
          java.nio.file.LinkOption.NOFOLLOW_LINKS).fileKey());
    } catch (IOException e) {
      return false;
    }
  }

  private static void deleteIfSame(Path descriptor, Path path) {
    try {
      if (sameFile(descriptor, path)) {
        Files.deleteIfExists(path);
      }
    } catch (IOException ignored) {
      // best effort: a file this open created and could not use
    }
  }

  /**
   * Opens {@code openAt} (the file's path, or the magic link of a descriptor already open on it)
   * as the DirectFile of {@code path}.
   */
  private static DirectFile open(Path openAt, Path path, TargetCache mode, boolean create, boolean noFollow) {
    // O_NOFOLLOW: a symlink swapped in after the caller checked the path is refused by the open
    // itself, not by a second check that could race with it.
    List<OpenOption> options = new ArrayList<>(List.of(StandardOpenOption.READ, StandardOpenOption.WRITE));
    if (noFollow) {
      options.add(java.nio.file.LinkOption.NOFOLLOW_LINKS);
    }
    if (create) {
      options.add(StandardOpenOption.CREATE_NEW);
    }
    int alignment = alignmentOf(path.toAbsolutePath().getParent());
    if (mode != TargetCache.WRITEBACK) {
      List<OpenOption> withDirect = new ArrayList<>(options);
      withDirect.add(ExtendedOpenOption.DIRECT);
      try {
        return new DirectFile(path, FileChannel.open(openAt, withDirect.toArray(OpenOption[]::new)), true, alignment);
      } catch (UnsupportedOperationException | IOException e) {
        if (e instanceof java.nio.file.FileAlreadyExistsException) {
          throw new UncheckedIOException((IOException) e);
        }
        refuseSymlink(path);
        // A failed O_DIRECT open may have created the file (open(2) creates before it checks flags).
        if (create) {
          try {
            Files.deleteIfExists(path);
          } catch (IOException ignored) {
            // best effort: the writeback open below would then fail with a clear message
          }
        }
        if (mode == TargetCache.DIRECT) {
          throw new BadInputException(
              "--target-cache direct: the file system of " + path + " refuses O_DIRECT (" + e.getMessage() + ")");
        }
        LOG.warn("O_DIRECT is not available for {} ({}); writing through the page cache", path, e.toString());
      }
    }
    try {
      return new DirectFile(path, FileChannel.open(openAt, options.toArray(OpenOption[]::new)), false, alignment);
    } catch (IOException e) {
      refuseSymlink(path);
      throw new UncheckedIOException("cannot open " + path + ": " + e.getMessage(), e);
    }
  }

  private static int alignmentOf(Path dir) {
    try {
      long bs = Files.getFileStore(dir).getBlockSize();
      return (int) Math.max(MIN_ALIGNMENT, bs);
    } catch (IOException | UnsupportedOperationException e) {
      return MIN_ALIGNMENT;
    }
  }

  /**
   * Takes the fence lock (exclusive, one byte at {@link #FENCE_OFFSET}) through this channel; it
   * is held until {@link #close()}. Only this channel may be open on the file meanwhile: closing
   * any other channel on it would drop this process's locks.
   *
   * @throws io.zcow.TargetLockedException when another writer holds it
   */
  public void lockFence() {
    Object key = fileKey(path);
    if (FENCED.putIfAbsent(key, this) != null) {
      throw new io.zcow.TargetLockedException(path + " is locked by another writer in this process");
    }
    try {
      fence = channel.tryLock(FENCE_OFFSET, 1, false);
    } catch (java.nio.channels.OverlappingFileLockException e) {
      fence = null;
    } catch (IOException e) {
      FENCED.remove(key, this);
      throw ioFailure("lock", FENCE_OFFSET, 1, e);
    }
    if (fence == null) {
      FENCED.remove(key, this);
      throw new io.zcow.TargetLockedException(path + " is locked by another writer");
    }
    fenceKey = key;
  }

  /**
   * Refuses early when a writer in this JVM holds {@code path}'s fence: opening (and then closing)
   * a second channel on the file would silently drop that writer's lock.
   *
   * @throws io.zcow.TargetLockedException when this process already fences the file
   */
  public static void checkNotFencedHere(Path path) {
    if (Files.exists(path) && FENCED.containsKey(fileKey(path))) {
      throw new io.zcow.TargetLockedException(path + " is locked by another writer in this process");
    }
  }

  private static Object fileKey(Path path) {
    try {
      Object key = Files.readAttributes(path, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
      return key != null ? key : path.toRealPath();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot stat " + path + ": " + e.getMessage(), e);
    }
  }

  /** A direct buffer of {@code size} bytes whose address is a multiple of {@code alignment}. */
  public static ByteBuffer allocateAligned(int size, int alignment) {
    return Aligned.allocate(size, alignment);
  }

  public boolean isDirect() {
    return direct;
  }

  public int alignment() {
    return alignment;
  }

  public Path path() {
    return path;
  }

  /**
   * From now on every write first asks {@code mayWrite}, from whichever thread writes; when it
   * says no, the write is refused with a {@link FencedWriteException} and nothing reaches the
   * file. A writer that may have lost its leadership (a ZooKeeper session gone, a process frozen
   * and thawed) thereby issues no new write, even from threads that do not know about leadership.
   */
  public void guardWrites(java.util.function.BooleanSupplier mayWrite) {
    this.mayWrite = java.util.Objects.requireNonNull(mayWrite, "mayWrite");
  }

  /** Writes all remaining bytes of {@code src} at {@code position}; does not move src's position. */
  public void write(ByteBuffer src, long position) {
    if (!mayWrite.getAsBoolean()) {
      throw new FencedWriteException(String.format(
          "write of %d bytes at 0x%x in %s refused: this writer may no longer write it", src.remaining(), position,
          path));
    }
    ByteBuffer b = src.duplicate();
    long pos = position;
    try {
      if (!SPACE_LEFT.isEmpty()) {
        chargeSpace(b.remaining());
      }
      while (b.hasRemaining()) {
        pos += channel.write(b, pos);
      }
    } catch (IOException e) {
      throw ioFailure("write", position, src.remaining(), e);
    }
    writes.increment();
    bytesWritten.add(src.remaining());
  }

  /** Writes issued so far (each call of {@link #write} counts once). */
  public long writes() {
    return writes.sum();
  }

  public long bytesWritten() {
    return bytesWritten.sum();
  }

  /**
   * Reads into {@code dst} from {@code position} until dst is full or the file ends; does not move
   * dst's position.
   *
   * @return the bytes read (fewer than requested only at end of file)
   */
  public int read(ByteBuffer dst, long position) {
    ByteBuffer b = dst.duplicate();
    long pos = position;
    try {
      while (b.hasRemaining()) {
        int n = channel.read(b, pos);
        if (n < 0) {
          break;
        }
        pos += n;
      }
    } catch (IOException e) {
      throw ioFailure("read", position, dst.remaining(), e);
    }
    return (int) (pos - position);
  }

  /**
   * Makes written data durable (fdatasync).
   *
   * @throws TargetIoException when it fails, and on every later call without trying again (the
   *     page state is unknown after a failed fdatasync: resume from the last checkpoint)
   */
  public void force() {
    TargetIoException earlier = syncFailed;
    if (earlier != null) {
      throw new TargetIoException("fdatasync of " + path + " refused: an earlier fdatasync of it failed ("
          + earlier.getMessage() + "), so its page state is unknown; resume from the last checkpoint", path, earlier);
    }
    try {
      channel.force(false);
    } catch (IOException e) {
      TargetIoException failure = ioFailure("fdatasync", 0, 0, e);
      syncFailed = failure;
      throw failure;
    }
  }

  /** Whether an fdatasync of this file has failed (it is then never tried again). */
  public boolean syncFailed() {
    return syncFailed != null;
  }

  public long size() {
    try {
      return channel.size();
    } catch (IOException e) {
      throw ioFailure("stat", 0, 0, e);
    }
  }

  /**
   * Grows the file to {@code length} (a multiple of the alignment) if it is shorter, by writing
   * its last aligned block as zeros. Through this channel, not another one: closing a second
   * channel on the file would drop the POSIX locks this process holds on it.
   */
  public void extendTo(long length) {
    if (length % alignment != 0) {
      throw new IllegalArgumentException("length must be a multiple of " + alignment + ": " + length);
    }
    if (size() < length) {
      write(allocateAligned(alignment, alignment), length - alignment);
    }
  }

  /** Any I/O error on the image is the target's: typed, naming the operation, offset and file. */
  private TargetIoException ioFailure(String op, long position, int length, IOException e) {
    String what = op.equals("fdatasync") || op.equals("stat") ? op + " of " + path
        : String.format("%s of %d bytes at 0x%x in %s", op, length, position, path);
    return TargetIoException.of(what, path, e);
  }

  /**
   * A test seam: bytes that writes to files in a directory may still take before they fail as a
   * full file system would ({@code IOException("No space left on device")}). Empty in production.
   */
  static final java.util.concurrent.ConcurrentHashMap<Path, java.util.concurrent.atomic.AtomicLong> SPACE_LEFT =
      new java.util.concurrent.ConcurrentHashMap<>();

  private void chargeSpace(int bytes) throws IOException {
    java.util.concurrent.atomic.AtomicLong left = SPACE_LEFT.get(path.toAbsolutePath().normalize().getParent());
    if (left != null && left.addAndGet(-bytes) < 0) {
      left.addAndGet(bytes);
      throw new IOException("No space left on device");
    }
  }

  @Override
  public void close() {
    if (fenceKey != null) {
      FENCED.remove(fenceKey, this);
      fenceKey = null;
    }
    try {
      channel.close();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
