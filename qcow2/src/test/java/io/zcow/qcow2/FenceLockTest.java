package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.TargetLockedException;
import io.zcow.testkit.QemuImg;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fence: a writer holds a lock on one byte of its target far past the end, so no other writer
 * process can open it, while qemu-img can still inspect it. Tested across processes, since locks
 * inside one JVM do not exercise the OS lock.
 */
class FenceLockTest {
  @TempDir Path dir;

  /** Child process: creates the image, checkpoints, says "ready", and holds it until stdin closes. */
  public static void main(String[] args) throws Exception {
    if (args[0].equals("probe")) {
      // Another process trying the fence of an existing file.
      try (DirectFile f = DirectFile.open(Path.of(args[1]), TargetCache.WRITEBACK, false)) {
        f.lockFence();
        System.out.println("free");
      } catch (TargetLockedException e) {
        System.out.println("locked");
      }
      return;
    }
    Path target = Path.of(args[0]);
    ImageWriter w = ImageWriter.create(target, options());
    w.putZeros(0, 1);
    Checkpoint cp = w.checkpoint();
    Files.write(Path.of(args[1]), cp.toBytes());
    System.out.println("ready");
    System.out.flush();
    System.in.read();
    w.close();
  }

  static ImageOptions options() {
    return ImageOptions.defaults(ImageGeometry.forSource(1 << 20, 65536));
  }

  @Test
  void aSecondWriterProcessCannotOpenALockedTargetUntilTheFirstLetsGo() throws Exception {
    Path target = dir.resolve("fenced.qcow2");
    Path cpFile = dir.resolve("cp.bin");
    Process child = new ProcessBuilder(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-cp", System.getProperty("java.class.path"), FenceLockTest.class.getName(),
            target.toString(), cpFile.toString())
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start();
    try {
      BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream()));
      assertEquals("ready", out.readLine());
      Checkpoint cp = Checkpoint.fromBytes(Files.readAllBytes(cpFile));

      assertThrows(TargetLockedException.class, () -> ImageWriter.resume(target, options(), cp));
      // Inspection tools still work on a locked image in progress.
      if (QemuImg.isAvailable()) {
        Process check = new ProcessBuilder("qemu-img", "info", "-U", ImageWriter.partPath(target).toString())
            .redirectErrorStream(true).start();
        String info = new String(check.getInputStream().readAllBytes());
        assertEquals(0, check.waitFor(), info);
      }

      child.getOutputStream().close(); // let go
      assertTrue(child.waitFor(30, TimeUnit.SECONDS));
      ImageWriter w = ImageWriter.resume(target, options(), cp);
      w.putZeros(1, options().geometry().guestClusters() - 1);
      w.finish();
      QemuImg.assertClean(target);
    } finally {
      child.destroyForcibly();
    }
  }

  @Test
  void aSecondWriterInThisProcessIsRefusedWithoutDroppingTheFirstOnesLock() throws Exception {
    Path target = dir.resolve("twice.qcow2");
    ImageWriter w = ImageWriter.create(target, options());
    Checkpoint cp = w.checkpoint();
    assertThrows(TargetLockedException.class, () -> ImageWriter.resume(target, options(), cp));
    assertEquals("locked", probe(ImageWriter.partPath(target)), "the first writer still holds the fence");
    w.close();
    assertEquals("free", probe(ImageWriter.partPath(target)));
  }

  private static String probe(Path file) throws Exception {
    Process p = new ProcessBuilder(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-cp", System.getProperty("java.class.path"), FenceLockTest.class.getName(), "probe", file.toString())
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start();
    String answer = new String(p.getInputStream().readAllBytes()).strip();
    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    return answer;
  }
}
