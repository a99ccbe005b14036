package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.CorruptException;
import io.zcow.testkit.HostileBytes;
import io.zcow.testkit.TestData;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import io.zcow.testkit.Tries;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Images, state files and checkpoints as a broken disk, a truncated copy or a hostile PREV could
 * hand them to zcow: mutated copies of what ImageWriter writes, and arbitrary bytes. Only {@link
 * CorruptException} (or {@link BadInputException} where documented) comes out, within a few seconds
 * each, and nothing allocates by a length read from the bytes. A failure names its try's seed ({@link Tries});
 * a found case becomes a plain test in {@link HostileImageRegressionTest}.
 */
class HostileImageProperties {
  static final Duration EACH = Duration.ofSeconds(10);
  static final int CS = 4096;
  static final long SIZE = 300 * 1024 + 1536; // a partial last cluster; several L2 tables
  private static Path dir;
  private static byte[] image;
  private static byte[] state;
  private static ImageGeometry geometry;

  @BeforeAll
  static void writeValidImage() throws Exception {
    dir = Files.createTempDirectory("zcow-hostile");
    geometry = ImageGeometry.forSource(SIZE, CS);
    Path raw = dir.resolve("raw");
    byte[] data = TestData.compressible(7, (int) SIZE);
    java.util.Arrays.fill(data, 40 * CS, 60 * CS, (byte) 0);
    for (int i = 70 * CS; i < 72 * CS; i++) {
      data[i] = (byte) (i * 31 + (i >>> 7)); // incompressible enough to be stored raw
    }
    Files.write(raw, data);
    ImageOptions o = ImageOptions.defaults(geometry).withRangeBytes(16 * CS).withCacheBytes(1L << 20);
    Path target = dir.resolve("valid.qcow2");
    ImageWriter w = ImageWriter.create(target, o);
    ImageFeeder.feed(w, ImageFeeder.entries(raw, CS, 3), 0, 1);
    w.finish();
    image = Files.readAllBytes(target);
    state = validState(geometry, 8);

    // A job cut off halfway: its .part, its state file and the checkpoint that names them.
    entries = ImageFeeder.entries(raw, CS, 3);
    Path resume = dir.resolve("resume.qcow2");
    ImageWriter half = ImageWriter.create(resume, o);
    ImageFeeder.feed(half, entries.subList(0, entries.size() / 2), 5, 1);
    checkpoint = half.checkpoint().toBytes();
    half.close();
    Path part = ImageWriter.partPath(resume);
    partBytes = Files.readAllBytes(part);
    partState = Files.readAllBytes(new StateFiles(part).path(Checkpoint.fromBytes(checkpoint).sequence()));
    options = o;
  }

  private static List<ImageFeeder.Entry> entries;
  private static byte[] checkpoint;
  private static byte[] partBytes;
  private static byte[] partState;
  private static ImageOptions options;

  @Test
  void resumingFromAMutatedCheckpointWritesOrIsTyped() {
    Tries.run(200, g -> resumeFromMutated(g.anyLong()));
  }

  private static void resumeFromMutated(long seed) throws IOException {
    Path target = dir.resolve("resume.qcow2");
    Path part = ImageWriter.partPath(target);
    Files.write(part, partBytes);
    byte[] cpBytes = HostileBytes.mutate(checkpoint, seed);
    expectTyped(() -> {
      Checkpoint cp = Checkpoint.fromBytes(cpBytes);
      Files.write(new StateFiles(part).path(cp.sequence()), partState);
      ImageWriter w = ImageWriter.resume(target, options, cp);
      try {
        ImageFeeder.feed(w, entries, 0, 1);
        w.finish();
      } finally {
        w.close();
      }
    }, List.of(CorruptException.class, BadInputException.class, io.zcow.TargetIoException.class));
    try (var files = Files.list(dir)) {
      for (Path p : files.filter(p -> p.getFileName().toString().startsWith("resume.qcow2")).toList()) {
        Files.delete(p);
      }
    }
  }

  @AfterAll
  static void removeDir() throws IOException {
    try (var files = Files.walk(dir)) {
      for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  @Test
  void mutatedImageHeadersReadOrAreCorrupt() {
    Tries.run(400, g -> {
      // How far in mutations land: header only, header and L1, metadata, anywhere.
      int head = new int[] {112, 2 * CS, 8 * CS, image.length}[g.oneOf(4)];
      openAndReadAll(HostileBytes.mutateHead(image, head, g.anyLong()));
    });
  }

  @Test
  void mutatedAndCutImagesReadOrAreCorrupt() {
    Tries.run(300, g -> openAndReadAll(HostileBytes.mutate(image, g.anyLong())));
  }

  @Test
  void arbitraryBytesAfterTheMagicAreCorrupt() {
    Tries.run(300, g -> {
      byte[] tail = g.bytes(4 * CS);
      ByteBuffer b = ByteBuffer.allocate(8 + tail.length).putInt(0x514649fb).putInt(g.between(2, 3)).put(tail);
      openAndReadAll(b.array());
    });
  }

  @Test
  void mutatedStateFilesLoadOrAreCorrupt() {
    Tries.run(500, g -> loadState(HostileBytes.mutate(state, g.anyLong())));
  }

  @Test
  void arbitraryStateFilesAreCorrupt() {
    Tries.run(300, g -> {
      // A valid prefix (magic and geometry) so the bytes reach the counts and tables after it.
      byte[] tail = g.bytes(600);
      ByteBuffer b = ByteBuffer.allocate(24 + tail.length).put(state, 0, 24).put(tail);
      loadState(b.array());
    });
  }

  @Test
  void checkpointBytesDecodeOrAreCorrupt() {
    Tries.run(1000, g -> checkpointBytes(g.bool() ? g.bytes(120) : null, g.anyLong()));
  }

  private static void checkpointBytes(byte[] arbitrary, long seed) {
    byte[] valid = new Checkpoint(3, 90, 88, 1000, 4, 70, 20, 2, 48, 1, 50_000, 4).toBytes();
    byte[] b = arbitrary != null ? arbitrary : HostileBytes.mutate(valid, seed);
    expectTyped(() -> {
      Checkpoint cp = Checkpoint.fromBytes(b);
      assertTrue(cp.sequence() >= 0 && cp.nextFreeCluster() >= 0 && cp.cursorCluster() >= -1 && cp.cursorUsed() >= 0
          && cp.cursorRefcount() >= 0, "a decoded checkpoint has no negative field: " + cp);
    }, List.of(CorruptException.class));
  }

  /**
   * Checks the image's metadata as a previous image is checked, then opens it and reads its first
   * MiB and its last cluster, as restore and compare do.
   */
  static void openAndReadAll(byte[] bytes) {
    Path file = write("probe.qcow2", bytes);
    expectTyped(() -> ImageCheck.metadata(file), List.of(CorruptException.class, BadInputException.class));
    expectTyped(() -> {
      try (ImageReader r = ImageReader.open(file)) {
        long size = r.virtualSize();
        ByteBuffer buf = ByteBuffer.allocate(CS);
        for (long at = 0; at < Math.min(size, 1 << 20); at += CS) {
          r.read(at, buf.clear().limit((int) Math.min(CS, size - at)));
        }
        if (size > 0) {
          r.read(size - 1, buf.clear().limit(1));
        }
      }
    }, List.of(CorruptException.class, BadInputException.class));
  }

  static void loadState(byte[] bytes) {
    Path part = dir.resolve("probe.qcow2.part");
    write("probe.qcow2.part.state-1", bytes);
    expectTyped(() -> new StateFiles(part).load(1, new RangeTracker(geometry, 8)), List.of(CorruptException.class));
  }

  /** Runs {@code action} within {@link #EACH}; anything thrown must be one of {@code allowed}. */
  static void expectTyped(Executable action, List<Class<? extends Throwable>> allowed) {
    assertTimeoutPreemptively(EACH, () -> {
      try {
        action.execute();
      } catch (Throwable t) {
        if (allowed.stream().noneMatch(c -> c.isInstance(t))) {
          throw new AssertionError("not a typed error: " + t, t);
        }
      }
    });
  }

  static Path write(String name, byte[] bytes) {
    try {
      return Files.write(dir.resolve(name), bytes);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** State of an image with ranges of {@code rangeClusters}: some complete, two in flight, a table pending. */
  static byte[] validState(ImageGeometry g, long rangeClusters) {
    RangeTracker t = new RangeTracker(g, rangeClusters);
    t.mark(0, 2 * rangeClusters, r -> {});
    t.mark(3 * rangeClusters + 1, 5, r -> {});
    t.mark(5 * rangeClusters, 3, r -> {});
    t.setEntry(3 * rangeClusters + 1, 0x8000_0000_0001_0000L);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      t.save(out);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }
}
