package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The open itself refuses a symlink (O_NOFOLLOW): one swapped in after a path check is never written through. */
class DirectFileSymlinkTest {
  @TempDir Path dir;

  @Test
  void aSymlinkSwappedInAfterTheCheckIsRefusedByTheOpen() throws Exception {
    byte[] secret = "not an image\n".repeat(400).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    Path outside = Files.write(dir.resolve("outside"), secret);
    Path part = dir.resolve("root").resolve("disk.qcow2.part");
    Files.createDirectories(part.getParent());
    Files.write(part, new byte[4096]);
    assertTrue(!Files.isSymbolicLink(part), "the check passes: a plain file");
    // Between the check and the open, the file becomes a link to a file outside the root.
    Files.delete(part);
    Files.createSymbolicLink(part, outside);
    for (TargetCache mode : TargetCache.values()) {
      BadInputException e = assertThrows(BadInputException.class, () -> DirectFile.open(part, mode, false));
      assertTrue(e.getMessage().contains("is a symlink"), e.getMessage());
    }
    assertArrayEquals(secret, Files.readAllBytes(outside));
    for (TargetCache mode : TargetCache.values()) {
      BadInputException e = assertThrows(BadInputException.class, () -> DirectFile.openExact(part, mode, false));
      assertTrue(e.getMessage().contains("is a symlink"), e.getMessage());
    }
    assertArrayEquals(secret, Files.readAllBytes(outside));
  }

  @Test
  void aDirectorySwappedForASymlinkAfterTheCheckIsRefusedByTheOpenExact() throws Exception {
    byte[] secret = "not an image\n".repeat(400).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    Path elsewhere = Files.createDirectories(dir.resolve("elsewhere"));
    Path victim = Files.write(elsewhere.resolve("disk.qcow2.part"), secret);
    Path jobs = Files.createDirectories(dir.resolve("root").resolve("jobs"));
    Path part = jobs.resolve("disk.qcow2.part");
    Files.write(part, new byte[4096]);
    // Checked: a plain file in a plain directory of the root. Then the directory becomes a link
    // to a directory outside it, holding a file of the same name.
    Files.delete(part);
    Files.delete(jobs);
    Files.createSymbolicLink(jobs, elsewhere);
    for (TargetCache mode : TargetCache.values()) {
      BadInputException e = assertThrows(BadInputException.class, () -> DirectFile.openExact(part, mode, false));
      assertTrue(e.getMessage().contains("was opened at " + victim) && e.getMessage().contains("symlink"),
          e.getMessage());
    }
    assertArrayEquals(secret, Files.readAllBytes(victim), "nothing read or written there");
    // A new file is refused the same way, and the one the open made there is removed again.
    Path fresh = jobs.resolve("new.qcow2.part");
    BadInputException e = assertThrows(BadInputException.class,
        () -> DirectFile.openExact(fresh, TargetCache.AUTO, true));
    assertTrue(e.getMessage().contains("symlink"), e.getMessage());
    assertFalse(Files.exists(elsewhere.resolve("new.qcow2.part")), "the file created outside is removed");
    // Where the path holds no link, the same call opens and writes as open() does.
    Path plain = Files.createDirectories(dir.resolve("plain")).resolve("ok.qcow2.part");
    try (DirectFile f = DirectFile.openExact(plain, TargetCache.AUTO, true)) {
      java.nio.ByteBuffer b = DirectFile.allocateAligned(f.alignment(), f.alignment());
      b.put(0, (byte) 7);
      f.write(b, 0);
    }
    assertTrue(Files.readAllBytes(plain)[0] == 7, "written through the exact open");
  }
}
