package io.zcow.qcow2;

/** What {@link ImageWriter#put} did with a cluster. */
public enum PutResult {
  /** Accepted: it will be in the image. */
  ACCEPTED,
  /** Refused quietly: this guest cluster had already arrived (first arrival wins). */
  DUPLICATE
}
