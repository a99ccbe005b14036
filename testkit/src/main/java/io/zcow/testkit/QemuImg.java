package io.zcow.testkit;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs {@code qemu-img}, the reference for everything zcow writes: an image is only as good as
 * {@code qemu-img check} and {@code qemu-img compare} say it is.
 *
 * <p>Every method first calls {@link #assumeAvailable()}: without qemu-img the calling test is
 * skipped, or fails when the environment variable {@code CI} is {@code true}. Methods are thread
 * safe (each runs its own process) and wait at most ten minutes for qemu-img.
 */
public final class QemuImg {

  private static final String PACKAGE = "qemu-utils";

  private QemuImg() {}

  /**
   * The result of {@code qemu-img check --output=json}. qemu-img omits "corruptions" and "leaks"
   * when they are zero, so absent fields read as 0.
   *
   * @param exitCode 0 clean, 1 the check could not run (see output), 2 corruptions, 3 leaks only
   * @param output everything qemu-img printed, stdout then stderr
   */
  public record CheckResult(
      int exitCode, long corruptions, long leaks, long checkErrors, String output) {

    /** True when qemu-img found nothing at all to complain about. */
    public boolean clean() {
      return exitCode == 0 && corruptions == 0 && leaks == 0 && checkErrors == 0;
    }
  }

  /** True when qemu-img is on PATH. Never skips or fails. */
  public static boolean isAvailable() {
    return Tools.find("qemu-img").isPresent();
  }

  /**
   * Skips the calling test when qemu-img is missing, or fails it with an {@link AssertionError}
   * when {@code CI=true} (qemu-utils must be installed there).
   */
  public static void assumeAvailable() {
    executable();
  }

  /** Runs {@code qemu-img check --output=json -f qcow2 IMAGE}; never throws for a bad image. */
  public static CheckResult check(Path image) {
    Tools.Result r = run("check", "--output=json", "-f", "qcow2", image.toString());
    return new CheckResult(
        r.exitCode(),
        jsonLong(r.stdout(), "corruptions"),
        jsonLong(r.stdout(), "leaks"),
        jsonLong(r.stdout(), "check-errors"),
        r.output());
  }

  /** Fails, quoting all of qemu-img's output, unless the check finds nothing at all. */
  public static void assertClean(Path image) {
    CheckResult r = check(image);
    if (!r.clean()) {
      throw new AssertionError(
          "qemu-img check of " + image + " is not clean (exit " + r.exitCode() + ", corruptions "
              + r.corruptions() + ", leaks " + r.leaks() + ", check-errors " + r.checkErrors()
              + "):\n" + r.output());
    }
  }

  /**
   * Runs {@code qemu-img compare -f raw -F qcow2 RAW IMAGE}. A raw file whose size is not a
   * multiple of 512 compares equal to an image rounded up with zeros, as qemu-img sees it.
   *
   * @return true when the guest contents are identical, false when they differ
   * @throws IllegalStateException when qemu-img cannot open or read either file
   */
  public static boolean compare(Path raw, Path image) {
    Tools.Result r = run("compare", "-f", "raw", "-F", "qcow2", raw.toString(), image.toString());
    switch (r.exitCode()) {
      case 0:
        return true;
      case 1:
        return false;
      default:
        throw new IllegalStateException(r.describe());
    }
  }

  /** Fails, quoting qemu-img (it names the first differing offset), unless the contents match. */
  public static void assertIdentical(Path raw, Path image) {
    Tools.Result r = run("compare", "-f", "raw", "-F", "qcow2", raw.toString(), image.toString());
    if (r.exitCode() != 0) {
      throw new AssertionError(
          "qemu-img compare: " + image + " does not read back as " + raw + ": " + r.describe());
    }
  }

  /**
   * Makes a compressed reference image the way QEMU does: {@code qemu-img convert -c -f raw -O
   * qcow2 -o compression_type=T,cluster_size=N RAW OUT}. Overwrites {@code qcow2Out}.
   *
   * @param compressionType "zstd" or "zlib"
   * @param clusterSize a power of two from 512 to 2 MiB
   */
  public static void convert(Path raw, Path qcow2Out, String compressionType, int clusterSize) {
    if (!compressionType.equals("zstd") && !compressionType.equals("zlib")) {
      throw new IllegalArgumentException(
          "compressionType must be \"zstd\" or \"zlib\", was \"" + compressionType + "\"");
    }
    if (Integer.bitCount(clusterSize) != 1 || clusterSize < 512 || clusterSize > (2 << 20)) {
      throw new IllegalArgumentException(
          "clusterSize must be a power of two from 512 to 2 MiB, was " + clusterSize);
    }
    Tools.Result r =
        run(
            "convert", "-c", "-f", "raw", "-O", "qcow2",
            "-o", "compression_type=" + compressionType + ",cluster_size=" + clusterSize,
            raw.toString(), qcow2Out.toString());
    if (r.exitCode() != 0) {
      throw new IllegalStateException(r.describe());
    }
  }

  /** {@code qemu-img info --output=json IMAGE}: the JSON text, format probed by qemu-img. */
  public static String info(Path image) {
    Tools.Result r = run("info", "--output=json", image.toString());
    if (r.exitCode() != 0) {
      throw new IllegalStateException(r.describe());
    }
    return r.stdout();
  }

  /**
   * {@code qemu-img map --output=json -f qcow2 IMAGE}: one JSON object per extent of the chain,
   * with its {@code depth} (0 = the top image).
   */
  public static String map(Path image) {
    Tools.Result r = run("map", "--output=json", "-f", "qcow2", image.toString());
    if (r.exitCode() != 0) {
      throw new IllegalStateException(r.describe());
    }
    return r.stdout();
  }

  /** {@code qemu-img convert -f qcow2 -O raw IMAGE RAW}: the guest's contents, to compare images against. */
  public static void toRaw(Path image, Path raw) {
    succeed(run("convert", "-f", "qcow2", "-O", "raw", image.toString(), raw.toString()));
  }

  /** {@code qemu-img resize -f qcow2 IMAGE SIZE}. */
  public static void resize(Path image, long size) {
    succeed(run("resize", "-q", "-f", "qcow2", image.toString(), Long.toString(size)));
  }

  /** {@code qemu-img amend -f qcow2 -o OPTIONS IMAGE}, e.g. {@code "refcount_bits=1"}. */
  public static void amend(Path image, String options) {
    succeed(run("amend", "-q", "-f", "qcow2", "-o", options, image.toString()));
  }

  /** {@code qemu-img create -f qcow2 -o cluster_size=N IMAGE SIZE}: an empty guest disk. */
  public static void create(Path image, long size, int clusterSize) {
    succeed(run("create", "-q", "-f", "qcow2", "-o", "cluster_size=" + clusterSize, image.toString(),
        Long.toString(size)));
  }

  /**
   * {@code qemu-img create -f qcow2 -b BACKING -F qcow2 IMAGE}: an empty overlay; a relative
   * {@code backing} is taken relative to IMAGE's directory, as QEMU resolves it.
   */
  public static void createOverlay(Path image, String backing) {
    succeed(run("create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", image.toString()));
  }

  /** {@code qemu-img commit -d OVERLAY}: writes the overlay's clusters into its backing file. */
  public static void commit(Path overlay) {
    succeed(run("commit", "-q", "-d", overlay.toString()));
  }

  /**
   * {@code qemu-img bitmap --add --enable -g GRANULARITY IMAGE NAME}: a persistent dirty bitmap
   * that records every later write (made with {@link #io}) into the image.
   */
  public static void addBitmap(Path image, String name, int granularity) {
    succeed(run("bitmap", "--add", "--enable", "-g", Integer.toString(granularity), "-f", "qcow2",
        image.toString(), name));
  }

  /** {@code qemu-img bitmap --remove IMAGE NAME}. */
  public static void removeBitmap(Path image, String name) {
    succeed(run("bitmap", "--remove", "-f", "qcow2", image.toString(), name));
  }

  /**
   * Runs {@code qemu-io -f qcow2 -c COMMAND... IMAGE} (standalone: the image must not be open in
   * another process), e.g. {@code "write -P 0xcc 4M 128k"}, {@code "write -z 0 64k"}, {@code
   * "discard 1M 64k"}. qemu-io reports a failed command on stdout with exit 0, so any output
   * naming an error fails too.
   */
  public static void io(Path image, String... commands) {
    List<String> command = new ArrayList<>();
    command.add(Tools.require("qemu-io", PACKAGE).toString());
    command.addAll(List.of("-f", "qcow2"));
    for (String c : commands) {
      command.addAll(List.of("-c", c));
    }
    command.add(image.toString());
    Tools.Result r = Tools.run(command, Tools.DEFAULT_TIMEOUT);
    if (r.exitCode() != 0 || r.output().contains("failed") || r.output().contains("error")) {
      throw new IllegalStateException(r.describe());
    }
  }

  private static void succeed(Tools.Result r) {
    if (r.exitCode() != 0) {
      throw new IllegalStateException(r.describe());
    }
  }

  /**
   * The guest clusters the top image of a chain holds itself (depth 0 and present in {@link
   * #map}): data and zero-flag clusters, not the unallocated ones that read through to the
   * backing file, nor those past the backing file's end (depth 0, not present).
   */
  public static java.util.TreeSet<Long> topClusters(Path image, int clusterSize) {
    java.util.TreeSet<Long> out = new java.util.TreeSet<>();
    java.util.regex.Matcher m = java.util.regex.Pattern.compile(
        "\"start\": (\\d+), \"length\": (\\d+), \"depth\": (\\d+), \"present\": (true|false)").matcher(map(image));
    while (m.find()) {
      if (Long.parseLong(m.group(3)) == 0 && m.group(4).equals("true")) {
        long start = Long.parseLong(m.group(1));
        long end = start + Long.parseLong(m.group(2));
        for (long c = start / clusterSize; c * clusterSize < end; c++) {
          out.add(c);
        }
      }
    }
    return out;
  }

  /**
   * Fails unless the chain topped by {@code overlay} reads as {@code raw}, the overlay checks
   * clean, and it holds exactly the clusters {@code changed} ({@link #topClusters}).
   */
  public static void assertOverlay(Path raw, Path overlay, int clusterSize, java.util.Set<Long> changed) {
    assertIdentical(raw, overlay);
    assertClean(overlay);
    java.util.TreeSet<Long> top = topClusters(overlay, clusterSize);
    if (!top.equals(new java.util.TreeSet<>(changed))) {
      throw new AssertionError(overlay + " holds clusters " + top + ", expected " + new java.util.TreeSet<>(changed));
    }
  }

  private static Path executable() {
    return Tools.require("qemu-img", PACKAGE);
  }

  private static Tools.Result run(String... args) {
    List<String> command = new ArrayList<>();
    command.add(executable().toString());
    command.addAll(List.of(args));
    return Tools.run(command, Tools.DEFAULT_TIMEOUT);
  }

  /** The integer value of a top-level JSON field, 0 when the field is absent. */
  static long jsonLong(String json, String field) {
    Matcher m = Pattern.compile("\"" + Pattern.quote(field) + "\"\\s*:\\s*(-?\\d+)").matcher(json);
    return m.find() ? Long.parseLong(m.group(1)) : 0;
  }
}
