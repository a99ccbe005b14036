package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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
  }
}
