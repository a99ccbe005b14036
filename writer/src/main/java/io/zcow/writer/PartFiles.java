package io.zcow.writer;

import io.zcow.RetriableException;
import io.zcow.TargetLockedException;
import io.zcow.qcow2.DirectFile;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Removal of a {@code .part} file and its state files that no open image of this writer holds. */
final class PartFiles {
  private static final Logger LOG = LoggerFactory.getLogger(PartFiles.class);

  private PartFiles() {}

  /**
   * Removes {@code part} and its state files once no other writer holds its fence lock.
   *
   * @throws TargetLockedException while another writer (in any process) holds it
   */
  static void removeUnlocked(Path part, String tag) {
    DirectFile.checkNotFencedHere(part);
    try (FileChannel ch = FileChannel.open(part, StandardOpenOption.WRITE)) {
      FileLock lock = ch.tryLock(DirectFile.FENCE_OFFSET, 1, false);
      if (lock == null) {
        throw new TargetLockedException(part + " is locked by another writer");
      }
      Files.deleteIfExists(part);
      deleteStateFiles(part);
      LOG.info("{} removed {}: no committed checkpoint covers it", tag, part.getFileName());
    } catch (IOException e) {
      throw new RetriableException("cannot remove " + part + ": " + e.getMessage(), e);
    }
  }

  private static void deleteStateFiles(Path part) {
    try (DirectoryStream<Path> dir = Files.newDirectoryStream(part.getParent(), part.getFileName() + ".state-*")) {
      for (Path p : dir) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      LOG.warn("cannot remove state files of {}: {}", part, e.toString());
    }
  }
}
