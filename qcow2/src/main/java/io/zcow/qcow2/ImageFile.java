package io.zcow.qcow2;

import io.zcow.BadInputException;
import io.zcow.CorruptException;
import io.zcow.RetriableException;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.function.Supplier;

/**
 * An image file opened for positional reads (a plain FileChannel: reads are small and random, and
 * O_DIRECT would only cost alignment), with its size taken once at open and the image's name in
 * every error. Thread safe.
 */
final class ImageFile implements Closeable {
  private final Path path;
  private final FileChannel channel;
  private final long size;

  private ImageFile(Path path, FileChannel channel, long size) {
    this.path = path;
    this.channel = channel;
    this.size = size;
  }

  /** Opens {@code path} for reading; a file that cannot be opened is the user's mistake. */
  static ImageFile open(Path path) {
    FileChannel ch;
    try {
      ch = FileChannel.open(path, StandardOpenOption.READ);
    } catch (IOException e) {
      throw new BadInputException("cannot open " + path + ": " + reason(e), e);
    }
    try {
      return new ImageFile(path, ch, ch.size()); // not Files.size(): that is 0 for a block device
    } catch (IOException e) {
      closeAfter(ch, e);
      throw new RetriableException(path + ": cannot get the file size: " + e.getMessage(), e);
    }
  }

  Path path() {
    return path;
  }

  long size() {
    return size;
  }

  /**
   * Fills dst's remaining bytes from {@code position}. Running into the end of the file is
   * corruption: callers check ranges against {@link #size()} first, so the file shrank.
   */
  void readFully(ByteBuffer dst, long position, String what) {
    long p = position;
    while (dst.hasRemaining()) {
      int n;
      try {
        n = channel.read(dst, p);
      } catch (IOException e) {
        throw new RetriableException(String.format("%s: reading %s at 0x%x failed: %s", path, what, p, e), e);
      }
      if (n < 0) {
        throw corrupt("%s at 0x%x runs past the end of the file at 0x%x", what, position, p);
      }
      p += n;
    }
  }

  /** True when [offset, offset + length) is not wholly within the file; safe against overflow. */
  boolean pastEnd(long offset, long length) {
    return offset < 0 || length > size || offset > size - length;
  }

  CorruptException corrupt(String format, Object... args) {
    return new CorruptException(path + ": " + String.format(format, args));
  }

  /** Runs a format-level decode (Header, L2Entry, PayloadDecoder) and names the image in its errors. */
  <T> T named(Supplier<T> decode) {
    try {
      return decode.get();
    } catch (CorruptException e) {
      throw new CorruptException(path + ": " + e.getMessage(), e);
    }
  }

  static String reason(IOException e) {
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
    try {
      channel.close();
    } catch (IOException e) {
      throw new UncheckedIOException(path + ": close failed", e);
    }
  }

  private static void closeAfter(FileChannel ch, Exception primary) {
    try {
      ch.close();
    } catch (IOException e) {
      primary.addSuppressed(e);
    }
  }
}
