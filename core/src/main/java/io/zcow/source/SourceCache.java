package io.zcow.source;

/** How a source is read: through the page cache or around it. */
public enum SourceCache {
  /** O_DIRECT where the file system allows it, otherwise the page cache (with a warning). */
  AUTO,
  /** O_DIRECT or nothing: a source whose file system refuses it is a {@link io.zcow.BadInputException}. */
  DIRECT,
  /** Through the page cache (the source host's cache fills with data that is read once). */
  WRITEBACK
}
