package io.zcow.qcow2;

/**
 * Counters of an {@link ImageWriter}, a consistent snapshot.
 *
 * @param guestClustersDone guest clusters accepted (zero, raw and compressed)
 * @param zeroClusters accepted as zeros (including holes)
 * @param rawClusters accepted raw
 * @param compressedClusters accepted compressed
 * @param duplicates refused because the guest cluster had already arrived
 * @param payloadBytes bytes of accepted payloads (compressed and raw)
 * @param hostBytes size of the image so far (allocated host clusters)
 * @param writes writes issued to the target file
 * @param bytesWritten bytes written to the target file (padding and rewrites included)
 * @param rangesComplete ranges whose every guest cluster has arrived
 */
public record ImageStats(
    long guestClustersDone,
    long zeroClusters,
    long rawClusters,
    long compressedClusters,
    long duplicates,
    long payloadBytes,
    long hostBytes,
    long writes,
    long bytesWritten,
    long rangesComplete) {}
