package io.zcow.source;

import java.io.Closeable;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * Something a backup reads from: a regular file or a block device ({@link FileSource}), or an NBD
 * export ({@link io.zcow.source.nbd.NbdSource}). {@link Sources#open} opens one from what a user
 * or a job wrote.
 *
 * <p>Thread safe: every method may be called from several threads at once, since reads are
 * positional and share no cursor. {@link #close()} must not race with other calls. I/O failures
 * are {@link io.zcow.RetriableException}s naming the offset.
 */
public interface Source extends Closeable {

  /** Size in bytes, fixed when the source was opened. */
  long size();

  /** Names the source in log lines and errors, e.g. "block device /dev/sdb". */
  String describe();

  /**
   * Reads from {@code offset} into {@code dst} until dst is full or the source ends. The bytes
   * land from dst's position on; dst's position and limit are not moved.
   *
   * <p>Direct sources read around the page cache only when the request allows it: a direct
   * buffer, its address, the offset and the length all multiples of the source's alignment (4096
   * on common file systems; a length may run past the end of the source). Other requests are
   * served through the page cache.
   *
   * @return the bytes read; fewer than requested only at the end of the source
   */
  int read(ByteBuffer dst, long offset);

  /**
   * The offset of the first data byte at or after {@code offset} (SEEK_DATA), or {@link #size()}
   * if only holes follow. A source that cannot tell holes from data returns {@code offset}.
   */
  long nextData(long offset);

  /**
   * The offset of the first hole byte at or after {@code offset} (SEEK_HOLE), {@link #size()}
   * where the data runs to the end. A source that cannot tell holes returns {@link #size()}.
   */
  long nextHole(long offset);

  @Override
  void close();

  /**
   * Opens a regular file or block device.
   *
   * @throws io.zcow.BadInputException when the path is missing, a directory, unreadable, not a
   *     regular file or block device, or refuses O_DIRECT while {@link SourceCache#DIRECT} asks
   *     for it
   */
  static Source open(Path path, SourceCache mode) {
    return FileSource.open(path, mode);
  }
}
