package io.zcow.qcow2;

/** How the target file is opened. */
public enum TargetCache {
  /** O_DIRECT where the file system supports it, otherwise writeback with a warning (default). */
  AUTO,
  /** O_DIRECT, or fail: every write aligned in offset, length and memory. */
  DIRECT,
  /** Through the page cache. */
  WRITEBACK
}
