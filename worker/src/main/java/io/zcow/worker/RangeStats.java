package io.zcow.worker;

/**
 * What compressing one range produced.
 *
 * @param zeroClusters clusters that read as zeros (holes and all-zero data)
 * @param rawClusters clusters stored as they are (compression did not shrink them enough)
 * @param compressedClusters clusters sent as a compressed payload
 * @param bytesRead bytes actually read from the source (holes are not read)
 * @param payloadBytes bytes handed to the sink (compressed payloads plus raw clusters)
 * @param crc32c CRC32C of the range's guest bytes in order: clusterCount × cluster_size bytes,
 *     zeros and the zero padding of a partial last cluster included (as {@link
 *     java.util.zip.CRC32C#getValue()} reports it)
 */
public record RangeStats(
    long zeroClusters,
    long rawClusters,
    long compressedClusters,
    long bytesRead,
    long payloadBytes,
    long crc32c) {

  public long clusters() {
    return zeroClusters + rawClusters + compressedClusters;
  }
}
