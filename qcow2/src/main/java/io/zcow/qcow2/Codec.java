package io.zcow.qcow2;

/** Compression types of qcow2 (header byte 104). zcow writes zstd; it reads both. */
public enum Codec {
  ZLIB(0),
  ZSTD(1);

  /** The value of the header's compression_type byte. */
  public final int headerValue;

  Codec(int headerValue) {
    this.headerValue = headerValue;
  }

  public static Codec fromHeaderValue(int value) {
    for (Codec c : values()) {
      if (c.headerValue == value) {
        return c;
      }
    }
    throw new io.zcow.CorruptException("unknown compression type " + value + " in qcow2 header");
  }
}
