package io.zcow.proto.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.RetriableException;
import io.zcow.proto.JobSpec;
import io.zcow.proto.JobState;
import io.zcow.proto.Wire;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/** The jobs topic as every role reads it, on kafka-clients' MockConsumer (no broker). */
class JobBookReaderTest {
  private static final String TOPIC = "zcow.jobs";
  private static final TopicPartition TP = new TopicPartition(TOPIC, 0);

  private static JobSpec spec(String id, JobState state, long epoch) {
    return JobSpec.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(id).setState(state)
        .setWriterEpoch(epoch).build();
  }

  private static MockConsumer<String, byte[]> consumer(List<JobSpec> specs) {
    MockConsumer<String, byte[]> c = new MockConsumer<>("earliest");
    Node node = new Node(0, "localhost", 9092);
    c.updatePartitions(TOPIC, List.of(new PartitionInfo(TOPIC, 0, node, new Node[] {node}, new Node[] {node})));
    c.updateBeginningOffsets(Map.of(TP, 0L));
    c.updateEndOffsets(Map.of(TP, (long) specs.size()));
    c.schedulePollTask(() -> {
      long offset = 0;
      for (JobSpec s : specs) {
        c.addRecord(new ConsumerRecord<>(TOPIC, 0, offset++, s.getJobId(), s.toByteArray()));
      }
    });
    return c;
  }

  @Test
  void readsToTheEndAndADeposedWritersLaterStateDoesNotWin() {
    JobBook book = new JobBook(RecordAuth.NONE);
    List<JobSpec> log = List.of(spec("a", JobState.JOB_STATE_SUBMITTED, 0), spec("a", JobState.JOB_STATE_RUNNING, 2),
        spec("a", JobState.JOB_STATE_FAILED, 1), spec("b", JobState.JOB_STATE_DONE, 3),
        spec("b", JobState.JOB_STATE_SUBMITTED, 0), spec("..", JobState.JOB_STATE_SUBMITTED, 0));
    try (TopicReader r = new TopicReader(consumer(log), TOPIC, Duration.ofSeconds(1))) {
      List<JobBook.Applied> applied = new java.util.ArrayList<>();
      r.readToEnd(Duration.ofSeconds(5), rec -> applied.add(book.apply(rec)));
      assertEquals(6, applied.size());
      assertInstanceOf(JobBook.Applied.Ignored.class, applied.get(2), "epoch 1 after epoch 2");
      assertTrue(((JobBook.Applied.Ignored) applied.get(5)).reason().contains("job id '..'"));
    }
    assertEquals(JobState.JOB_STATE_RUNNING, book.get("a").orElseThrow().getState());
    assertEquals(JobState.JOB_STATE_SUBMITTED, book.get("b").orElseThrow().getState(), "a resubmission applies");
    assertTrue(book.get("..").isEmpty());
  }

  @Test
  void aTopicThatDoesNotExistIsRetriable() {
    MockConsumer<String, byte[]> c = new MockConsumer<>("earliest");
    try (TopicReader r = new TopicReader(c, TOPIC, Duration.ofSeconds(1))) {
      assertThrows(RetriableException.class, () -> r.readToEnd(Duration.ofSeconds(1), rec -> { }));
    }
  }
}
