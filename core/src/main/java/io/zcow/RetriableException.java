package io.zcow;

/** A failure that may go away if the operation is tried again (I/O hiccup, broker unavailable). */
public class RetriableException extends ZcowException {
  public RetriableException(String message, Throwable cause) {
    super(message, cause);
  }
}
