package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.TargetFullException;
import io.zcow.TargetIoException;
import io.zcow.testkit.FaultyDisk;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * DirectFile on a disk that returns EIO from the kernel ({@link FaultyDisk}): errors are typed
 * {@link TargetIoException}s that name the file, offset and error, and a failed fdatasync is never
 * tried again, even once the disk works again (the page state is unknown after it).
 */
class DirectFileOnFailingDiskTest {
  @TempDir
  Path dir;

  @Test
  void writeErrorsAreTypedAndAFailedFdatasyncIsNeverTriedAgain() throws Exception {
    Path mnt = Files.createDirectories(dir.resolve("mnt"));
    try (FaultyDisk disk = FaultyDisk.start(dir.resolve("disk"), mnt, 64L << 20, Duration.ZERO)) {
      ByteBuffer block = DirectFile.allocateAligned(1 << 20, 4096);
      block.put(0, (byte) 7);
      Path directPath = mnt.resolve("direct.img");
      try (DirectFile direct = DirectFile.open(directPath, TargetCache.DIRECT, true)) {
        assertTrue(direct.isDirect());
        direct.write(block, 0);
        direct.force();
        disk.failWrites(true);
        TargetIoException e = assertThrows(TargetIoException.class, () -> direct.write(block, 1 << 20));
        assertFalse(e instanceof TargetFullException, e.toString());
        assertTrue(e.getMessage().contains(directPath.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("at 0x100000"), e.getMessage());
        assertTrue(e.getMessage().contains("Input/output error"), e.getMessage());
        assertEquals(directPath, e.file());
        disk.failWrites(false);
        direct.write(block, 1 << 20); // the disk works again; no fdatasync failed, so nothing is refused
        direct.force();
      }

      Path bufferedPath = mnt.resolve("buffered.img");
      try (DirectFile buffered = DirectFile.open(bufferedPath, TargetCache.WRITEBACK, true)) {
        buffered.write(block, 0); // lands in the page cache
        disk.failWrites(true);
        TargetIoException first = assertThrows(TargetIoException.class, buffered::force);
        assertTrue(first.getMessage().startsWith("target I/O error: fdatasync of " + bufferedPath), first.getMessage());
        assertTrue(first.getMessage().contains("Input/output error"), first.getMessage());
        assertTrue(buffered.syncFailed());
        disk.failWrites(false);
        // The disk works again, but the pages' state is unknown: never fdatasync that file again.
        TargetIoException again = assertThrows(TargetIoException.class, buffered::force);
        assertTrue(again.getMessage().contains("refused: an earlier fdatasync of it failed"), again.getMessage());
        assertTrue(again.getCause() == first, "the first failure is the cause");
      }
    }
  }
}
