package io.zcow;

/**
 * The user asked for something that cannot be done (missing source, bad option value). The message
 * is one line fit to print as it is; the command line exits with code 2.
 */
public class BadInputException extends ZcowException {
  public BadInputException(String message) {
    super(message);
  }

  public BadInputException(String message, Throwable cause) {
    super(message, cause);
  }
}
