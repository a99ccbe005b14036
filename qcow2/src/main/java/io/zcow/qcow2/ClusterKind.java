package io.zcow.qcow2;

/** How one guest cluster travels from a compressor to the image writer. */
public enum ClusterKind {
  /** Reads as zeros: no payload, no L2 entry. */
  ZERO,
  /** A compressed payload of 1 to cluster_size - 1 bytes. */
  COMPRESSED,
  /** The cluster as it is (compression did not shrink it enough): exactly cluster_size bytes. */
  RAW
}
