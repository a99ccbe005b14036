package io.zcow.source;

import com.sun.jna.LastErrorException;
import io.zcow.RetriableException;
import java.nio.file.Path;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Finds data and holes in a file with lseek(SEEK_DATA/SEEK_HOLE), on a read-only descriptor of
 * its own: Java 17 has no API for it, and the descriptor's file position is the only state lseek
 * touches, which no reader uses (reads are positional, on other descriptors).
 *
 * <p>Where lseek cannot help (no libc, a file system that answers EINVAL) the whole file counts as
 * data: slower for sparse files, never wrong. Thread safe; the lock only keeps {@link #close()}
 * from freeing the descriptor number while a seek is using it (it could be reused by then).
 */
final class HoleSeeker implements AutoCloseable {
  private final Path path;
  private final long size;
  private final LibC libc;
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private int fd; // guarded by lock; -1 once unsupported or closed

  private HoleSeeker(Path path, long size, LibC libc, int fd) {
    this.path = path;
    this.size = size;
    this.libc = libc;
    this.fd = fd;
  }

  /** A seeker for {@code path} (whose size is {@code size}); never fails, at worst sees no holes. */
  static HoleSeeker open(Path path, long size) {
    LibC libc = LibC.instance();
    int fd = -1;
    if (libc != null) {
      try {
        fd = libc.open(path.toAbsolutePath().toString(), LibC.O_RDONLY);
      } catch (LastErrorException e) {
        fd = -1; // the channel opened it, so this is odd; losing hole detection is the safe answer
      }
    }
    return new HoleSeeker(path, size, libc, fd);
  }

  /**
   * lseek(fd, 0, SEEK_END) on a fresh descriptor: the size of a block device where the JDK reports
   * 0 for it; -1 where that cannot be asked.
   */
  static long endOf(Path path) {
    LibC libc = LibC.instance();
    if (libc == null) {
      return -1;
    }
    int fd;
    try {
      fd = libc.open(path.toAbsolutePath().toString(), LibC.O_RDONLY);
    } catch (LastErrorException e) {
      return -1;
    }
    try {
      return libc.lseek(fd, 0, LibC.SEEK_END);
    } catch (LastErrorException e) {
      return -1;
    } finally {
      closeQuietly(libc, fd);
    }
  }

  private static void closeQuietly(LibC libc, int fd) {
    try {
      libc.close(fd);
    } catch (LastErrorException ignored) {
      // a read-only descriptor has nothing to flush: a failed close loses nothing
    }
  }

  /** True while lseek answers: false means every byte counts as data. */
  boolean seesHoles() {
    lock.readLock().lock();
    try {
      return fd >= 0;
    } finally {
      lock.readLock().unlock();
    }
  }

  long nextData(long offset) {
    checkOffset(offset);
    if (offset >= size) {
      return size;
    }
    long r = seek(offset, LibC.SEEK_DATA);
    return r < 0 ? offset : Math.min(r, size);
  }

  long nextHole(long offset) {
    checkOffset(offset);
    if (offset >= size) {
      return size;
    }
    long r = seek(offset, LibC.SEEK_HOLE);
    return r < 0 ? size : Math.min(r, size);
  }

  /** The answer of lseek, {@code size} for ENXIO (no data after offset), -1 when unsupported. */
  private long seek(long offset, int whence) {
    lock.readLock().lock();
    try {
      if (fd < 0) {
        return -1;
      }
      try {
        return libc.lseek(fd, offset, whence);
      } catch (LastErrorException e) {
        if (e.getErrorCode() == LibC.ENXIO) {
          // Past the last data (SEEK_DATA), or a file that shrank since it was opened.
          return size;
        }
        if (e.getErrorCode() == LibC.EINVAL) {
          // This file system does not know SEEK_DATA/SEEK_HOLE (offsets are checked above).
          return -1;
        }
        throw new RetriableException(
            String.format("lseek(0x%x, %s) on %s failed: %s", offset,
                whence == LibC.SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE", path, e.getMessage()), e);
      }
    } finally {
      lock.readLock().unlock();
    }
  }

  private static void checkOffset(long offset) {
    if (offset < 0) {
      throw new IllegalArgumentException("offset must not be negative: " + offset);
    }
  }

  @Override
  public void close() {
    lock.writeLock().lock();
    try {
      if (fd >= 0) {
        closeQuietly(libc, fd);
        fd = -1;
      }
    } finally {
      lock.writeLock().unlock();
    }
  }
}
