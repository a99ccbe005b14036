package io.zcow.worker.kafka;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeLayout;
import io.zcow.proto.RangeTask;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.proto.kafka.KafkaSettings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A worker's edge checks of a task of a job by digest: it must carry exactly its range's previous
 * digests (32 bytes a cluster), and only such a job's tasks may carry them; anything else is
 * REJECTed, as invalid everywhere.
 */
class TaskTriageDigestTest {
  @TempDir Path dir;

  private JobSpec spec(boolean byDigest) throws Exception {
    Path src = Files.write(dir.resolve("src.raw"), new byte[4 << 20]);
    return JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId("dj").setSourceUri(src.toString())
        .setSourceSize(4 << 20).setVirtualSize(4 << 20).setClusterSize(65536).setRangeSize(1 << 20)
        .setCodec(WireCodec.WIRE_CODEC_ZSTD).setLevel(3).setTargetPath("t.qcow2").setWriterGroup("g")
        .setState(JobState.JOB_STATE_RUNNING).setBackingPath(byDigest ? "prev.qcow2" : "").setByDigest(byDigest)
        .build();
  }

  private static TaskTriage.Decision decide(JobSpec spec, int digestBytes) {
    RangeTask task = RangeLayout.of(spec).task(spec.getJobId(), 1, 0).toBuilder()
        .setPreviousDigests(ByteString.copyFrom(new byte[digestBytes])).build();
    JobView jobs = new JobView() {
      @Override
      public void awaitCaughtUp(Duration timeout) {}

      @Override
      public Optional<JobSpec> get(String jobId) {
        return Optional.of(spec);
      }

      @Override
      public boolean workWaiting() {
        return false;
      }
    };
    TaskTriage triage = new TaskTriage(0, jobs, WorkerConfig.builder(KafkaSettings.of("localhost:9")).build());
    return triage.decide(new ConsumerRecord<>("zcow.tasks", 0, 0, Wire.rangeKey(spec.getJobId(), 1),
        task.toByteArray()));
  }

  @Test
  void aTaskByDigestCarriesItsRangesDigestsAndNoOtherTaskDoes() throws Exception {
    JobSpec byDigest = spec(true);
    TaskTriage.Decision ok = decide(byDigest, 16 * 32);
    assertInstanceOf(TaskTriage.Decision.Start.class, ok, ok.toString());
    assertArrayEquals(new byte[16 * 32], ((TaskTriage.Decision.Start) ok).work().previousDigests());
    assertReject(decide(byDigest, 0), "without previous digests");
    assertReject(decide(byDigest, 15 * 32), "previous digests of 480 bytes for a range of 16 clusters");
    assertReject(decide(spec(false), 16 * 32), "not an incremental by digest");
  }

  private static void assertReject(TaskTriage.Decision d, String reason) {
    assertInstanceOf(TaskTriage.Decision.Reject.class, d, d.toString());
    assertTrue(((TaskTriage.Decision.Reject) d).reason().contains(reason), d.toString());
  }
}
