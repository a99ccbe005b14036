package io.zcow.coordinator;

import java.time.Duration;

/**
 * How far a job is, as the coordinator last learned it from the writer's events.
 *
 * @param rangesTotal ranges of the job
 * @param rangesDone ranges the writer reports complete (holes included)
 * @param guestBytesDone bytes of the disk written into the image (holes included)
 * @param hostBytes size of the image so far
 * @param bytesPerSecond guest bytes per second since this coordinator started following
 * @param eta time left at that rate; null while it is unknown
 * @param sinceProgress time since anything moved
 */
public record JobStatus(long rangesTotal, long rangesDone, long guestBytesDone, long hostBytes,
    double bytesPerSecond, Duration eta, Duration sinceProgress) {}
