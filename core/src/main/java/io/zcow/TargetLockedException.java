package io.zcow;

/**
 * The target's fence lock is held by another writer (another process, or another writer in this
 * one). Retrying later may succeed: a new leader waits for the old one to let go.
 */
public class TargetLockedException extends RetriableException {
  public TargetLockedException(String message) {
    super(message, null);
  }
}
