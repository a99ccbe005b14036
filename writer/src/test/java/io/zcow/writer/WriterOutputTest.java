package io.zcow.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.RangeLayout;
import io.zcow.proto.RangeTask;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.RecordAuth;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

/** What a term publishes, on kafka-clients' MockProducer (no broker) and a fixed clock. */
class WriterOutputTest {
  @Test
  void statesCarryTheTermsEpochAndTasksTheirRangeKeySignedWithTheClustersKey() {
    RecordAuth auth = RecordAuth.withKey(new byte[32]);
    WriterConfig config = WriterConfig.builder("h:1", "z:1", Path.of("/unused")).auth(auth)
        .topics("jobs", "tasks", "events").build();
    MockProducer<String, byte[]> producer = new MockProducer<>(true, null, new StringSerializer(),
        new ByteArraySerializer());
    WriterOutput out = new WriterOutput(config, producer, Clock.fixed(Instant.ofEpochMilli(42), ZoneOffset.UTC),
        () -> 7, "writer@test/default");
    JobSpec spec = JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId("j").setSourceSize(3 << 20)
        .setClusterSize(65536).setRangeSize(1 << 20).setCreatedAtMs(5).setState(JobState.JOB_STATE_SUBMITTED).build();

    out.state(spec, JobState.JOB_STATE_FAILED, "range 2 re-queued 5 times");
    RangeTask task = RangeLayout.of(spec).task("j", 2, 1);
    out.task(task);

    List<ProducerRecord<String, byte[]>> sent = producer.history();
    assertEquals(2, sent.size());
    ProducerRecord<String, byte[]> state = sent.get(0);
    assertEquals("jobs", state.topic());
    assertEquals("j", state.key());
    JobSpec published = ((Wire.Decoded.Ok<JobSpec>) Wire.jobSpec(state.value())).value();
    assertEquals(spec.toBuilder().setState(JobState.JOB_STATE_FAILED).setWriterEpoch(7)
        .setReason("range 2 re-queued 5 times").build(), published, "the same submission, its end, the epoch");
    ProducerRecord<String, byte[]> t = sent.get(1);
    assertEquals("tasks", t.topic());
    assertEquals("j/2", t.key());
    RangeTask decoded = ((Wire.Decoded.Ok<RangeTask>) Wire.rangeTask(t.value())).value();
    assertEquals(2L << 20, decoded.getOffset());
    assertEquals(1L << 20, decoded.getLength());
    assertEquals(1, decoded.getAttempt());
    for (ProducerRecord<String, byte[]> r : sent) {
      assertTrue(auth.verify(r.topic(), r.key(), r.value(), r.headers()).ok(), "signed: " + r.topic());
    }
  }
}
