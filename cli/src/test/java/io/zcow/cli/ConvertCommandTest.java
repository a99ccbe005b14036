package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad input to {@code zcow convert}: one line on stderr, exit code 2, nothing left behind. */
class ConvertCommandTest {
  @TempDir Path dir;

  private Path source() throws Exception {
    Path src = dir.resolve("src.raw");
    Files.write(src, new byte[1 << 20]);
    return src;
  }

  private void assertRefused(CliRun run, String expected) {
    assertEquals(2, run.exitCode(), run.err());
    String err = run.err().strip();
    assertEquals(1, err.lines().count(), "one line: " + err);
    assertTrue(err.startsWith("zcow: "), err);
    assertTrue(err.contains(expected), "'" + expected + "' in: " + err);
  }

  private void assertOnly(Path... expected) throws Exception {
    try (var s = Files.list(dir)) {
      assertEquals(List.of(expected).stream().sorted().toList(), s.sorted().toList());
    }
  }

  @Test
  void missingSource() throws Exception {
    assertRefused(CliRun.of("convert", dir.resolve("nope.raw").toString(), dir.resolve("o.qcow2").toString()),
        "does not exist");
    assertOnly();
  }

  @Test
  void directoryAsSource() throws Exception {
    Path sub = Files.createDirectory(dir.resolve("d"));
    assertRefused(CliRun.of("convert", sub.toString(), dir.resolve("o.qcow2").toString()), "directory");
    assertOnly(sub);
  }

  @Test
  void existingTargetWithoutForceIsLeftUntouched() throws Exception {
    Path src = source();
    Path target = dir.resolve("o.qcow2");
    Files.writeString(target, "precious");
    assertRefused(CliRun.of("convert", src.toString(), target.toString()), "exists");
    assertEquals("precious", Files.readString(target));
    assertOnly(src, target);
  }

  @Test
  void missingTargetDirectory() throws Exception {
    Path src = source();
    assertRefused(CliRun.of("convert", src.toString(), dir.resolve("no/such/o.qcow2").toString()),
        "does not exist");
    assertOnly(src);
  }

  @Test
  void unsupportedClusterSize() throws Exception {
    Path src = source();
    for (String cs : new String[] {"1k", "4m", "3000", "banana"}) {
      assertRefused(CliRun.of("convert", "--cluster-size", cs, src.toString(), dir.resolve("o.qcow2").toString()),
          cs.equals("banana") ? "not a size" : "--cluster-size must be a power of two");
    }
    assertOnly(src);
  }

  @Test
  void levelOutOfRange() throws Exception {
    Path src = source();
    assertRefused(CliRun.of("convert", "--level", "23", src.toString(), dir.resolve("o.qcow2").toString()), "--level");
    assertRefused(CliRun.of("convert", "--level", "x", src.toString(), dir.resolve("o.qcow2").toString()), "--level");
    assertOnly(src);
  }

  @Test
  void badOptionValues() throws Exception {
    Path src = source();
    String t = dir.resolve("o.qcow2").toString();
    assertRefused(CliRun.of("convert", "--threads", "0", src.toString(), t), "--threads");
    assertRefused(CliRun.of("convert", "--target-cache", "maybe", src.toString(), t), "--target-cache");
    assertRefused(CliRun.of("convert", "--write-cache", "sometimes", src.toString(), t), "--write-cache");
    assertRefused(CliRun.of("convert", "--progress", "loud", src.toString(), t), "--progress");
    assertRefused(CliRun.of("convert", src.toString()), "TARGET");
    assertRefused(CliRun.of("convert", "--bogus", src.toString(), t), "--bogus");
    assertOnly(src);
  }

  @Test
  void helpExplainsTheCommand() {
    CliRun run = CliRun.of("convert", "--help");
    assertEquals(0, run.exitCode());
  }
}
