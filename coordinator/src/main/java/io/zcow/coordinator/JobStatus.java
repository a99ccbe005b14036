package io.zcow.coordinator;

import java.time.Duration;

/**
 * How far a job is, as the coordinator last learned it from the writer's events.
 *
 * @param rangesTotal ranges of the job
 * @param rangesDone ranges the writer reports complete (holes included)
 * @param guestBytesDone bytes of the disk written into the image (holes included)
 * @param hostBytes size of the image so far
 * @param bytesPerSecond guest bytes (changed bytes of an incremental job) per second since this
 *     coordinator started following
 * @param eta time left at that rate; null while it is unknown
 * @param sinceProgress time since anything moved
 * @param changedBytesTotal incremental jobs: bytes of the clusters the overlay stores (0: a full
 *     job, or not reported yet); rate and ETA then count these bytes
 * @param changedBytesDone of those, bytes accepted so far
 */
public record JobStatus(long rangesTotal, long rangesDone, long guestBytesDone, long hostBytes,
    double bytesPerSecond, Duration eta, Duration sinceProgress, long changedBytesTotal, long changedBytesDone) {

  /** The bytes the job has to move: the changed ones of an incremental job, else the disk's. */
  public boolean incremental() {
    return changedBytesTotal > 0;
  }
}
