package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.testkit.QemuImg;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class VerifyCommandTest {
  @TempDir Path dir;
  Path source;
  Path image;

  @BeforeEach
  void convert() throws Exception {
    source = dir.resolve("src.raw");
    byte[] data = new byte[(1 << 20) + 300]; // half random, half zeros, a partial last sector
    new Random(7).nextBytes(data);
    java.util.Arrays.fill(data, 1 << 19, data.length, (byte) 0);
    Files.write(source, data);
    image = dir.resolve("out.qcow2");
    CliRun run = CliRun.of("convert", "--progress", "none", source.toString(), image.toString());
    assertEquals(0, run.exitCode(), run.err());
  }

  @Test
  void identicalImage() {
    Result r = verify(source.toString(), image.toString());
    assertEquals(new Result(0, "identical\n", ""), r);
  }

  @Test
  void changedSourcePrintsTheFirstDifferingOffset() throws Exception {
    byte[] data = Files.readAllBytes(source);
    data[700_000] = 1; // in the zero half
    Files.write(source, data);
    Result r = verify(source.toString(), image.toString());
    assertEquals(1, r.exit(), r.err());
    assertEquals("differ: first difference at offset 700000 (0xaae60)\n", r.out());
  }

  @Test
  void readsAChainThroughItsBackingFiles() throws Exception {
    QemuImg.assumeAvailable();
    Path inc = dir.resolve("inc.qcow2");
    QemuImg.createOverlay(inc, "out.qcow2");
    QemuImg.io(inc, "write -P 0xaa 65536 4096", "write -z 0 65536", "write -P 0x55 700000 3000");
    Path now = dir.resolve("now.raw");
    QemuImg.toRaw(inc, now);

    assertEquals(new Result(0, "identical\n", ""), verify(now.toString(), inc.toString()));
    Result old = verify(source.toString(), inc.toString());
    assertEquals(1, old.exit(), old.err());
    assertEquals(new Result(0, "identical\n", ""), verify(source.toString(), image.toString()));

    Files.move(image, dir.resolve("moved.qcow2"));
    assertBadInput(verify(now.toString(), inc.toString()), "chain is broken");
  }

  @Test
  void missingFilesAndNonImagesAreBadInput() {
    assertBadInput(verify(dir.resolve("nope.raw").toString(), image.toString()), "nope.raw");
    assertBadInput(verify(source.toString(), dir.resolve("nope.qcow2").toString()), "does not exist");
    assertBadInput(verify(source.toString(), source.toString()), "not a qcow2 image");
    assertBadInput(verify(source.toString(), dir.toString()), "cannot be read");
    assertBadInput(verify(source.toString()), "IMAGE");
  }

  private static void assertBadInput(Result r, String expected) {
    assertEquals(2, r.exit(), r.err());
    String err = r.err().strip();
    assertEquals(1, err.lines().count(), "one line: " + err);
    assertTrue(err.startsWith("zcow: ") && err.contains(expected), "'" + expected + "' in: " + err);
    assertEquals("", r.out());
  }

  record Result(int exit, String out, String err) {}

  private static synchronized Result verify(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream oldErr = System.err;
    PrintStream errStream = new PrintStream(err, true, StandardCharsets.UTF_8);
    System.setErr(errStream);
    try {
      CommandLine cl = Main.commandLine();
      cl.setOut(new PrintWriter(new PrintStream(out, true, StandardCharsets.UTF_8), true));
      cl.setErr(new PrintWriter(errStream, true));
      String[] all = new String[args.length + 1];
      all[0] = "verify";
      System.arraycopy(args, 0, all, 1, args.length);
      int code = cl.execute(all);
      return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    } finally {
      System.setErr(oldErr);
    }
  }
}
