package io.zcow;

/** An image or a record is corrupt. The message names the offset (hex) or cluster concerned. */
public class CorruptException extends ZcowException {
  public CorruptException(String message) {
    super(message);
  }

  public CorruptException(String message, Throwable cause) {
    super(message, cause);
  }
}
