package io.zcow.qcow2;

import io.zcow.RetriableException;

/**
 * A write refused by the guard of a {@link DirectFile}: its writer may no longer write the file
 * (it lost, or may have lost, its leadership). Nothing was written; a new term recovers from the
 * last checkpoint.
 */
public final class FencedWriteException extends RetriableException {
  public FencedWriteException(String message) {
    super(message, null);
  }
}
