package io.zcow.worker;

/**
 * What compressing one range produced.
 *
 * @param zeroClusters clusters that read as zeros (holes and all-zero data)
 * @param rawClusters clusters stored as they are (compression did not shrink them enough)
 * @param compressedClusters clusters sent as a compressed payload
 * @param bytesRead bytes actually read from the source (holes are not read)
 * @param payloadBytes bytes handed to the sink (compressed payloads plus raw clusters)
 */
public record RangeStats(
    long zeroClusters,
    long rawClusters,
    long compressedClusters,
    long bytesRead,
    long payloadBytes) {

  public long clusters() {
    return zeroClusters + rawClusters + compressedClusters;
  }
}
