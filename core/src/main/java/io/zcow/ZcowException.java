package io.zcow;

/**
 * Root of every exception zcow throws on purpose. Unchecked; its branches tell callers what to do:
 * {@link RetriableException} (trying again may help), {@link CorruptException} (an image or record
 * is corrupt: never retry the same bytes), {@link BadInputException} (the user asked for something
 * that cannot be done: exit code 2).
 */
public class ZcowException extends RuntimeException {
  public ZcowException(String message) {
    super(message);
  }

  public ZcowException(String message, Throwable cause) {
    super(message, cause);
  }
}
