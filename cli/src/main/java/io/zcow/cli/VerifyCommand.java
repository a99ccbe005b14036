package io.zcow.cli;

import io.zcow.BadInputException;
import io.zcow.qcow2.ImageReader;
import io.zcow.source.Source;
import io.zcow.source.SourceCache;
import io.zcow.source.Sources;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code zcow verify SOURCE IMAGE}: does the image read back as the source? */
@Command(
    name = "verify",
    mixinStandardHelpOptions = true,
    description = {
      "Reads SOURCE (a block device, a raw image or an NBD URI) and the qcow2 IMAGE side by side and prints 'identical', or the first guest offset where they differ. An IMAGE with a backing file is read as the whole chain (an incremental backup and the images it builds on).",
      "",
      "Exit codes: 0 identical, 1 different (or IMAGE is corrupt), 2 bad usage or input (missing file, IMAGE not a qcow2 image, a backing file missing).",
      ""
    })
final class VerifyCommand implements Callable<Integer> {
  private static final byte[] QCOW2_MAGIC = {'Q', 'F', 'I', (byte) 0xfb};

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Parameters(index = "0", paramLabel = "SOURCE", description = "Block device, raw disk image or NBD URI.")
  String source;

  @Parameters(index = "1", paramLabel = "IMAGE", description = "qcow2 image to compare with it.")
  Path image;

  @CommandLine.Mixin NbdCliOptions nbd = new NbdCliOptions();

  @Override
  public Integer call() {
    requireQcow2(image);
    long diff;
    try (Source src = Sources.open(source, SourceCache.WRITEBACK, nbd.options())) {
      diff = ImageReader.firstDifference(src, image);
    }
    PrintWriter out = spec.commandLine().getOut();
    if (diff < 0) {
      out.println("identical");
      out.flush();
      return Main.EXIT_OK;
    }
    out.printf(Locale.ROOT, "differ: first difference at offset %d (0x%x)%n", diff, diff);
    out.flush();
    return Main.EXIT_FAILED;
  }

  /** A file that is not qcow2 at all is a wrong argument, not a corrupt image. */
  private static void requireQcow2(Path image) {
    byte[] magic = new byte[QCOW2_MAGIC.length];
    int n;
    try (InputStream in = Files.newInputStream(image)) {
      n = in.readNBytes(magic, 0, magic.length);
    } catch (NoSuchFileException e) {
      throw new BadInputException("image " + image + " does not exist");
    } catch (IOException e) {
      throw new BadInputException("image " + image + " cannot be read: " + e.getMessage(), e);
    }
    if (n < magic.length || !Arrays.equals(magic, QCOW2_MAGIC)) {
      throw new BadInputException("image " + image + " is not a qcow2 image");
    }
  }
}
