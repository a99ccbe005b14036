package io.zcow.qcow2;

import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;

/** Test access to DirectFile's seam: a directory whose file system "fills up" after N more bytes. */
public final class TargetSpace {
  private TargetSpace() {}

  /** Writes to files in {@code dir} may take {@code bytes} more; then they fail with ENOSPC. */
  public static void limit(Path dir, long bytes) {
    DirectFile.SPACE_LEFT.put(dir.toAbsolutePath().normalize(), new AtomicLong(bytes));
  }

  /** Space is freed: writes to files in {@code dir} succeed again. */
  public static void free(Path dir) {
    DirectFile.SPACE_LEFT.remove(dir.toAbsolutePath().normalize());
  }
}
