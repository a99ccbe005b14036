package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.EventKind;
import io.zcow.proto.JobEvent;
import org.junit.jupiter.api.Test;

/** The edge where a worker's event becomes a {@link WorkerReleases.Release}. */
class WorkerReleasesTest {
  private static JobEvent.Builder event() {
    return JobEvent.newBuilder().setFormatVersion(1).setJobId("j").setKind(EventKind.EVENT_KIND_TASK_RELEASED)
        .setRangeIndex(3).setOrigin("worker@a").setReason(" worker@a could not finish it: NBD export 'disk' at h:1: gone\n");
  }

  @Test
  void aWellFormedReleaseIsKeptWithItsReasonTrimmed() {
    assertEquals(new WorkerReleases.Release("j", 3, "worker@a could not finish it: NBD export 'disk' at h:1: gone",
        -1), WorkerReleases.Release.of(event().setAttempt(2).build()), "a release names no failed attempt");
  }

  @Test
  void aFailedAttemptCarriesTheTasksAttemptNumber() {
    assertEquals(new WorkerReleases.Release("j", 3, "worker@a could not finish it: NBD export 'disk' at h:1: gone",
        0), WorkerReleases.Release.of(event().setKind(EventKind.EVENT_KIND_ATTEMPT_FAILED).build()));
    assertEquals(2, WorkerReleases.Release.of(event().setKind(EventKind.EVENT_KIND_ATTEMPT_FAILED).setAttempt(2)
        .build()).failedAttempt());
    assertNull(WorkerReleases.Release.of(event().setKind(EventKind.EVENT_KIND_ATTEMPT_FAILED).setAttempt(-1).build()),
        "an attempt number past int's range (uint32 on the wire) is not one the writer issued");
  }

  @Test
  void otherKindsAndIncompleteReleasesAreSkipped() {
    assertNull(WorkerReleases.Release.of(event().setKind(EventKind.EVENT_KIND_PROGRESS).build()));
    assertNull(WorkerReleases.Release.of(event().setJobId("").build()));
    assertNull(WorkerReleases.Release.of(event().setRangeIndex(-1).build()));
    assertNull(WorkerReleases.Release.of(event().setReason("  ").build()));
  }

  @Test
  void aLongReasonIsCut() {
    String reason = WorkerReleases.Release.of(event().setReason("x".repeat(50_000)).build()).reason();
    assertEquals(WorkerReleases.MAX_REASON_CHARS + 1, reason.length());
    assertTrue(reason.endsWith("…"));
  }
}
