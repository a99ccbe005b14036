package io.zcow.source;

import com.sun.nio.file.ExtendedOpenOption;
import io.zcow.BadInputException;
import io.zcow.RetriableException;
import io.zcow.io.Aligned;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A regular file or block device, read with positional reads, around the page cache (O_DIRECT)
 * where the request is aligned and the file system allows it, and with holes found by
 * SEEK_DATA/SEEK_HOLE.
 *
 * <p>Two channels: the O_DIRECT one serves aligned requests; a normal one serves the rest
 * (unaligned callers still get correct bytes, only through the page cache). Thread safe.
 * An interrupted reader closes the JDK channel it was reading for every thread (JDK behaviour):
 * interrupt workers only to stop them for good.
 */
public final class FileSource implements Source {
  private static final Logger LOG = LoggerFactory.getLogger(FileSource.class);
  private static final int S_IFMT = 0170000;
  private static final int S_IFBLK = 0060000;

  private final Path path;
  private final String kind;
  private final long size;
  private final int alignment;
  private final FileChannel buffered;
  private final FileChannel direct; // null when reading through the page cache only
  private final HoleSeeker holes;

  private FileSource(Path path, String kind, long size, int alignment, FileChannel buffered,
      FileChannel direct, HoleSeeker holes) {
    this.path = path;
    this.kind = kind;
    this.size = size;
    this.alignment = alignment;
    this.buffered = buffered;
    this.direct = direct;
    this.holes = holes;
  }

  /** See {@link Source#open}. */
  public static FileSource open(Path path, SourceCache mode) {
    Objects.requireNonNull(path, "path");
    Objects.requireNonNull(mode, "mode");
    String kind = kindOf(path);
    FileChannel buffered = openChannel(path);
    FileChannel direct = null;
    try {
      long size = sizeOf(buffered, kind, path);
      int alignment = alignmentOf(path);
      if (mode != SourceCache.WRITEBACK) {
        direct = openDirect(path, mode, size, alignment);
      }
      return new FileSource(path, kind, size, alignment, buffered, direct, HoleSeeker.open(path, size));
    } catch (RuntimeException e) {
      closeQuietly(direct);
      closeQuietly(buffered);
      throw e;
    }
  }

  private static String kindOf(Path path) {
    BasicFileAttributes attrs;
    try {
      attrs = Files.readAttributes(path, BasicFileAttributes.class);
    } catch (NoSuchFileException e) {
      throw new BadInputException("source " + path + " does not exist");
    } catch (IOException e) {
      throw new BadInputException("source " + path + " cannot be examined: " + e.getMessage(), e);
    }
    if (attrs.isDirectory()) {
      throw new BadInputException("source " + path + " is a directory");
    }
    if (attrs.isRegularFile()) {
      return "file";
    }
    if (attrs.isOther() && isBlockDevice(path)) {
      return "block device";
    }
    throw new BadInputException("source " + path + " is not a regular file or block device");
  }

  private static boolean isBlockDevice(Path path) {
    try {
      int mode = (Integer) Files.getAttribute(path, "unix:mode");
      return (mode & S_IFMT) == S_IFBLK;
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
      return false; // no unix view: cannot tell a device from a FIFO, so refuse it
    }
  }

  private static FileChannel openChannel(Path path) {
    if (!Files.isReadable(path)) {
      throw new BadInputException("source " + path + " is not readable");
    }
    try {
      return FileChannel.open(path, StandardOpenOption.READ);
    } catch (AccessDeniedException e) {
      throw new BadInputException("source " + path + " is not readable", e);
    } catch (IOException e) {
      throw new BadInputException("source " + path + " cannot be opened: " + e.getMessage(), e);
    }
  }

  private static long sizeOf(FileChannel channel, String kind, Path path) {
    try {
      long size = channel.size();
      if (size == 0 && !kind.equals("file")) {
        // JDK 17 asks the device (BLKGETSIZE64); should some JDK answer 0, ask lseek instead.
        size = Math.max(0, HoleSeeker.endOf(path));
      }
      return size;
    } catch (IOException e) {
      throw new BadInputException("size of source " + path + " cannot be read: " + e.getMessage(), e);
    }
  }

  private static int alignmentOf(Path path) {
    try {
      return (int) Math.max(Aligned.MIN_ALIGNMENT, Files.getFileStore(path).getBlockSize());
    } catch (IOException | UnsupportedOperationException e) {
      return Aligned.MIN_ALIGNMENT;
    }
  }

  /**
   * The O_DIRECT channel, proven by reading the first block: some file systems accept the flag
   * at open and refuse the reads.
   */
  private static FileChannel openDirect(Path path, SourceCache mode, long size, int alignment) {
    FileChannel ch = null;
    try {
      ch = FileChannel.open(path, StandardOpenOption.READ, ExtendedOpenOption.DIRECT);
      if (size > 0) {
        ch.read(Aligned.allocate(alignment, alignment), 0);
      }
      return ch;
    } catch (IOException | UnsupportedOperationException e) {
      closeQuietly(ch);
      if (mode == SourceCache.DIRECT) {
        throw new BadInputException("source " + path + " cannot be read with O_DIRECT: " + e.getMessage(), e);
      }
      LOG.warn("O_DIRECT is not available for source {} ({}); reading through the page cache", path, e.toString());
      return null;
    }
  }

  @Override
  public long size() {
    return size;
  }

  @Override
  public String describe() {
    return kind + " " + path + (direct != null ? " (O_DIRECT)" : "");
  }

  /** True when aligned requests bypass the page cache. */
  public boolean isDirect() {
    return direct != null;
  }

  /** The alignment (offset, length, buffer address) a request needs to be read with O_DIRECT. */
  public int alignment() {
    return alignment;
  }

  @Override
  public int read(ByteBuffer dst, long offset) {
    if (offset < 0) {
      throw new IllegalArgumentException("offset must not be negative: " + offset);
    }
    ByteBuffer b = dst.duplicate();
    boolean useDirect = direct != null && isAligned(b, offset);
    FileChannel ch = useDirect ? direct : buffered;
    if (useDirect && offset < size) {
      // Never ask past the block that holds the last byte: a direct read that crosses the file
      // system's largest file size (ext4: 16 TiB - 4 KiB) is refused with EINVAL, not cut short.
      long room = (size - offset + alignment - 1) / alignment * alignment;
      if (b.remaining() > room) {
        b.limit(b.position() + (int) room);
      }
    }
    long pos = offset;
    try {
      while (b.hasRemaining() && pos < size) {
        int n = ch.read(b, pos);
        if (n <= 0) {
          break;
        }
        pos += n;
        if (useDirect && pos % alignment != 0) {
          break; // a direct read ends mid-block only at the end of the source
        }
      }
    } catch (IOException e) {
      throw new RetriableException(String.format("read of %d bytes at 0x%x from %s failed: %s",
          dst.remaining(), offset, describe(), e), e);
    }
    return (int) (pos - offset);
  }

  private boolean isAligned(ByteBuffer b, long offset) {
    return b.isDirect()
        && offset % alignment == 0
        && b.remaining() % alignment == 0
        && b.alignmentOffset(b.position(), alignment) == 0;
  }

  @Override
  public long nextData(long offset) {
    return holes.nextData(offset);
  }

  @Override
  public long nextHole(long offset) {
    return holes.nextHole(offset);
  }

  @Override
  public void close() {
    holes.close();
    closeQuietly(direct);
    closeQuietly(buffered);
  }

  private static void closeQuietly(FileChannel ch) {
    if (ch != null) {
      try {
        ch.close();
      } catch (IOException ignored) {
        // read-only: nothing is lost when close fails
      }
    }
  }

  @Override
  public String toString() {
    return describe();
  }
}
