package io.zcow.writer;

import io.zcow.RetriableException;

/**
 * This writer is no longer the leader of its group (ZooKeeper said SUSPENDED or LOST, or another
 * leader's epoch is newer): it must stop writing at once and recover from the committed checkpoint
 * if it is elected again.
 */
public class DeposedException extends RetriableException {
  public DeposedException(String message, Throwable cause) {
    super(message, cause);
  }
}
