package io.zcow.qcow2;

import io.zcow.CorruptException;
import io.zcow.TargetIoException;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The checkpoint state files of an image in progress, {@code TARGET.part.state-SEQ} beside the
 * {@code .part} file (the {@link RangeTracker}'s bytes), and the fsyncs that make files and
 * renames durable. Not thread safe: the {@link ImageWriter} calls it under its lock.
 */
final class StateFiles {
  private static final Logger LOG = LoggerFactory.getLogger(StateFiles.class);
  private static final int BUFFER = 1 << 20;

  private final Path part;

  StateFiles(Path part) {
    this.part = part;
  }

  Path path(long seq) {
    return part.resolveSibling(part.getFileName() + ".state-" + seq);
  }

  /** Loads state file {@code seq} into {@code ranges}; an unreadable one is corrupt. */
  void load(long seq, RangeTracker ranges) {
    Path state = path(seq);
    String name = state.getFileName().toString();
    try (InputStream in = new BufferedInputStream(Files.newInputStream(state), BUFFER)) {
      ranges.load(in, name);
    } catch (IOException e) {
      throw new CorruptException("cannot read " + name + ": " + e.getMessage(), e);
    }
  }

  /** Writes and fsyncs state file {@code seq}; a half-written one is removed. */
  void save(long seq, RangeTracker ranges) {
    Path state = path(seq);
    try (FileChannel ch = FileChannel.open(state, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING);
        OutputStream out = new BufferedOutputStream(Channels.newOutputStream(ch), BUFFER)) {
      ranges.save(out);
      out.flush();
      ch.force(true);
    } catch (IOException e) {
      // A half-written state file is worth nothing and takes space an operator is freeing.
      deleteQuietly(state);
      throw TargetIoException.of("writing the checkpoint state file " + state, state, e);
    }
  }

  /** Removes the state files numbered below {@code below}; failing to is only logged. */
  void deleteBelow(long below) {
    String prefix = part.getFileName() + ".state-";
    try (DirectoryStream<Path> dir = Files.newDirectoryStream(part.toAbsolutePath().getParent(), prefix + "*")) {
      for (Path p : dir) {
        try {
          if (Long.parseLong(p.getFileName().toString().substring(prefix.length())) < below) {
            Files.deleteIfExists(p);
          }
        } catch (NumberFormatException ignored) {
          // not one of ours
        }
      }
    } catch (IOException e) {
      LOG.warn("[part={}] cannot remove old state files: {}", part.getFileName(), e.toString());
    }
  }

  static void fsyncDirectory(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      throw TargetIoException.of("fsync of directory " + dir, dir, e);
    }
  }

  static void deleteQuietly(Path p) {
    try {
      Files.deleteIfExists(p);
    } catch (IOException ignored) {
      // nothing more to do; the caller reports the original failure
    }
  }
}
