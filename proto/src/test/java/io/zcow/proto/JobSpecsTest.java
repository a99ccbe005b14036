package io.zcow.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The edge checks of an incremental job's changed-cluster runs, as every role makes them. */
class JobSpecsTest {
  private static ClusterRun run(long first, long count) {
    return ClusterRun.newBuilder().setFirst(first).setCount(count).build();
  }

  private static JobSpec spec(String backing, ClusterRun... changed) {
    return JobSpec.newBuilder().setJobId("j").setSourceSize(1 << 20).setVirtualSize(1 << 20).setClusterSize(65536)
        .setRangeSize(1 << 20).setCodec(WireCodec.WIRE_CODEC_ZSTD).setTargetPath("t.qcow2").setSourceUri("/s")
        .setWriterGroup("g").setBackingPath(backing).setPlan(JobPlan.newBuilder().addAllChanged(List.of(changed)))
        .build();
  }

  @Test
  void changedRunsMustBeAscendingDisjointAndInsideTheDisk() {
    assertNull(JobSpecs.problem(spec("prev.qcow2", run(0, 2), run(3, 1), run(15, 1))));
    assertNull(JobSpecs.problem(spec("prev.qcow2")), "nothing changed is a valid incremental");
    assertTrue(JobSpecs.isIncremental(spec("prev.qcow2")));
    assertEquals("plan: changed run 1+1 is empty, out of order or outside clusters 0..15",
        JobSpecs.problem(spec("prev.qcow2", run(0, 2), run(1, 1))));
    assertTrue(JobSpecs.problem(spec("prev.qcow2", run(15, 2))).contains("run 15+2"));
    assertTrue(JobSpecs.problem(spec("prev.qcow2", run(4, 0))).contains("run 4+0"));
    assertEquals("plan: changed clusters without a backing_path", JobSpecs.problem(spec("", run(0, 1))));
  }

  @Test
  void aTasksRunsMustLieInsideItsRange() {
    assertNull(JobSpecs.runsProblem(List.of(run(16, 1), run(20, 12)), 16, 32, 10));
    assertTrue(JobSpecs.runsProblem(List.of(run(15, 2)), 16, 32, 10).contains("outside clusters 16..31"));
    assertTrue(JobSpecs.runsProblem(List.of(run(30, 3)), 16, 32, 10).contains("run 30+3"));
    assertTrue(JobSpecs.runsProblem(List.of(run(16, 1), run(18, 1)), 16, 32, 1).contains("more than 1"));
  }

  @Test
  void aJobByDigestNeedsAPreviousImageNoChangedRunsAndRangesWhoseDigestsFitATask() {
    JobSpec byDigest = spec("prev.qcow2").toBuilder().setByDigest(true).build();
    assertNull(JobSpecs.problem(byDigest));
    assertTrue(JobSpecs.problem(spec("").toBuilder().setByDigest(true).build()).contains("by_digest needs a backing_path"));
    assertTrue(JobSpecs.problem(spec("prev.qcow2", run(0, 1)).toBuilder().setByDigest(true).build())
        .contains("no changed clusters"));
    // 4 KiB clusters: 512 MiB ranges would carry 4 MiB of digests; 96 MiB ranges carry 768 KiB.
    JobSpec small = byDigest.toBuilder().setSourceSize(1L << 30).setVirtualSize(1L << 30).setClusterSize(4096)
        .setRangeSize(512L << 20).build();
    assertTrue(JobSpecs.problem(small).contains("more than a task carries (786432)"), JobSpecs.problem(small));
    assertEquals(96L << 20, JobSpecs.digestRangeSize(512L << 20, 4096));
    assertNull(JobSpecs.problem(small.toBuilder().setRangeSize(JobSpecs.digestRangeSize(512L << 20, 4096)).build()));
    assertEquals(512L << 20, JobSpecs.digestRangeSize(512L << 20, 65536), "64 KiB clusters: the default range fits");
  }
}
