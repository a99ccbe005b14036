package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.testkit.Disks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A writer that may have lost its leadership issues no new write: once the guard says no, nothing
 * more reaches the file — not the caller's, not the cache's queued writes, not a checkpoint's, not
 * close's.
 */
class WriteGuardTest {
  private static final int CS = 65536;

  @TempDir Path dir;

  @Test
  void onceTheGuardSaysNoNothingMoreReachesTheFile() throws Exception {
    long size = 8L << 20;
    Path raw = Disks.random(dir.resolve("random.raw"), size, 5); // raw clusters: ready, and written, at once
    List<ImageFeeder.Entry> entries = ImageFeeder.entries(raw, CS, 3);
    Path target = dir.resolve("guarded.qcow2");
    AtomicBoolean mayWrite = new AtomicBoolean(true);
    ImageWriter w = ImageWriter.create(target, ImageOptions.defaults(ImageGeometry.forSource(size, CS)))
        .guardWrites(mayWrite::get);
    int half = entries.size() / 2;
    for (ImageFeeder.Entry e : entries.subList(0, half)) {
      ImageFeeder.put(w, e);
    }
    w.checkpoint();
    Path part = ImageWriter.partPath(target);
    byte[] atCheckpoint = Files.readAllBytes(part);

    mayWrite.set(false);
    int refused = 0;
    for (ImageFeeder.Entry e : entries.subList(half, entries.size())) {
      try {
        ImageFeeder.put(w, e);
      } catch (RuntimeException fenced) {
        refused++;
        break;
      }
    }
    assertThrows(RuntimeException.class, w::checkpoint, "a checkpoint cannot write either");
    w.close();
    assertArrayEquals(atCheckpoint, Files.readAllBytes(part), "not one byte written after the guard said no");
    assertTrue(refused <= 1);
  }
}
