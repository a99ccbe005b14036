package io.zcow.worker.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Wire;
import io.zcow.proto.WireCodec;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.testkit.EmbeddedKafka;
import io.zcow.testkit.EmbeddedKafkaExtension;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The worker's view of the jobs topic: the latest spec per job, under the writer-epoch rule. */
@ExtendWith(EmbeddedKafkaExtension.class)
class JobDirectoryTest {
  private static final Duration PATIENCE = Duration.ofSeconds(30);

  @Test
  void aWriterRecordOfAnOlderEpochDoesNotWinButTheUsersWordAndNewerEpochsDo(EmbeddedKafka kafka) throws Exception {
    String topic = kafka.uniqueName("jobs");
    kafka.createTopic(topic, 1, Map.of("cleanup.policy", "compact"));
    JobSpec spec = spec("job-epochs");
    try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(kafka.producerProps());
        JobDirectory jobs = JobDirectory.start(KafkaSettings.of(kafka.bootstrapServers()), "test/jobs", topic)) {
      // What is published, in order, and what the directory must say after each record.
      List<Step> steps = List.of(
          new Step(JobState.JOB_STATE_RUNNING, 2, new Seen(JobState.JOB_STATE_RUNNING, 2), "the leader's state"),
          new Step(JobState.JOB_STATE_DONE, 1, new Seen(JobState.JOB_STATE_RUNNING, 2),
              "the deposed writer's DONE (epoch 1) came later but does not win"),
          new Step(JobState.JOB_STATE_CANCELLED, 0, new Seen(JobState.JOB_STATE_CANCELLED, 0),
              "a cancel (epoch 0) is the user's word: it always applies"),
          new Step(JobState.JOB_STATE_RUNNING, 1, new Seen(JobState.JOB_STATE_CANCELLED, 0),
              "epoch 2 was seen: epoch 1 stays deposed after a cancel too"),
          new Step(JobState.JOB_STATE_FAILED, 3, new Seen(JobState.JOB_STATE_FAILED, 3), "a newer leader's state wins"));
      for (Step step : steps) {
        publish(producer, topic, spec.toBuilder().setState(step.published()).setWriterEpoch(step.epoch()).build());
        assertEquals(step.expected(), seen(jobs.refreshed("job-epochs", PATIENCE)), step.why());
      }
    }
  }

  private record Seen(JobState state, long epoch) {}

  private record Step(JobState published, long epoch, Seen expected, String why) {}

  private static Seen seen(Optional<JobSpec> spec) {
    JobSpec s = spec.orElseThrow(() -> new AssertionError("the job is unknown"));
    return new Seen(s.getState(), s.getWriterEpoch());
  }

  private static void publish(KafkaProducer<String, byte[]> producer, String topic, JobSpec spec) throws Exception {
    producer.send(new ProducerRecord<>(topic, spec.getJobId(), spec.toByteArray())).get();
  }

  private static JobSpec spec(String id) {
    return JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(id).setSourceUri("file:///dev/null")
        .setSourceSize(1 << 20).setVirtualSize(1 << 20).setClusterSize(65536).setRangeSize(1 << 20)
        .setCodec(WireCodec.WIRE_CODEC_ZSTD).setLevel(1).setTargetPath(id + ".qcow2").setWriterGroup("wg")
        .setState(JobState.JOB_STATE_SUBMITTED).build();
  }
}
