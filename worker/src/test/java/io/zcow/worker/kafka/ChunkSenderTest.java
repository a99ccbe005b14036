package io.zcow.worker.kafka;

import io.zcow.proto.kafka.ChunkLimits;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.RetriableException;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EntryChecksum;
import io.zcow.proto.EntryKind;
import io.zcow.proto.Wire;
import io.zcow.qcow2.ClusterKind;
import io.zcow.worker.RangeStats;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

class ChunkSenderTest {
  private static final RangeStats STATS = new RangeStats(1, 2, 3, 4, 5);

  private static MockProducer<String, byte[]> producer(boolean autoComplete) {
    return new MockProducer<>(autoComplete, null, new StringSerializer(), new ByteArraySerializer());
  }

  private static ByteBuffer bytes(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return ByteBuffer.wrap(b).asReadOnlyBuffer();
  }

  private static ChunkRecord decode(ProducerRecord<String, byte[]> r) {
    return ((Wire.Decoded.Ok<ChunkRecord>) Wire.chunkRecord(r.value())).value();
  }

  @Test
  void batchesOfAboutAMebibyteThenRangeDoneAllKeyedJobSlashRange() {
    MockProducer<String, byte[]> p = producer(true);
    ChunkSender s = new ChunkSender(p, "chunks", "job", 7, "w/0/a", () -> false);
    s.start("w");
    int cs = 64 << 10;
    s.zeros(0, 3);
    for (int c = 3; c < 60; c++) {
      s.cluster(c, c % 5 == 0 ? ClusterKind.RAW : ClusterKind.COMPRESSED, bytes(c % 5 == 0 ? cs : 30_000, c));
    }
    s.finish(STATS, "w", 1000);
    List<ProducerRecord<String, byte[]>> sent = p.history();
    assertTrue(sent.size() >= 4, "started, several batches, done: " + sent.size());
    ChunkRecord first = decode(sent.get(0));
    assertTrue(first.hasStarted(), "the attempt opens with RangeStarted: " + first);
    assertEquals("job", first.getStarted().getJobId());
    assertEquals(7, first.getStarted().getRangeIndex());
    assertEquals("w/0/a", first.getStarted().getAttemptId());
    assertEquals("w", first.getStarted().getWorker());
    assertEquals("job/7", sent.get(0).key());
    long next = 0;
    for (int i = 1; i < sent.size() - 1; i++) {
      assertEquals("job/7", sent.get(i).key());
      assertEquals("chunks", sent.get(i).topic());
      assertTrue(sent.get(i).value().length <= ChunkLimits.recordBytes(cs), "record of " + sent.get(i).value().length);
      for (ChunkEntry e : decode(sent.get(i)).getBatch().getEntriesList()) {
        assertEquals(next, e.getCluster());
        assertTrue(EntryChecksum.matches(e), "every entry, zero runs too, carries its checksum: " + e);
        next += e.getKind() == EntryKind.ENTRY_KIND_ZERO ? e.getCount() : 1;
      }
    }
    assertEquals(60, next);
    ChunkRecord last = decode(sent.get(sent.size() - 1));
    assertTrue(last.hasDone());
    assertEquals(sent.size() - 2, last.getDone().getBatches());
    assertEquals("w/0/a", last.getDone().getAttemptId());
    assertEquals(5, last.getDone().getPayloadBytes());
  }

  @Test
  void aRawTwoMebibyteClusterTravelsAloneWithinTheRecordLimit() {
    MockProducer<String, byte[]> p = producer(true);
    ChunkSender s = new ChunkSender(p, "chunks", "job", 0, "a", () -> false);
    s.start("w");
    int cs = 2 << 20;
    s.cluster(0, ClusterKind.COMPRESSED, bytes(1000, 1));
    s.cluster(1, ClusterKind.RAW, bytes(cs, 2));
    s.finish(STATS, "w", 1000);
    List<ProducerRecord<String, byte[]>> sent = p.history();
    assertEquals(4, sent.size(), "started, two batches, done");
    int big = sent.get(2).value().length;
    assertTrue(big > cs && big <= ChunkLimits.recordBytes(cs), "record of " + big);
  }

  @Test
  void aFailedSendFailsTheRangeEvenIfFlushWouldReturn() {
    MockProducer<String, byte[]> p = producer(false);
    ChunkSender s = new ChunkSender(p, "chunks", "job", 0, "a", () -> false);
    s.start("w");
    p.completeNext(); // the RangeStarted
    int cs = 1 << 20;
    s.cluster(0, ClusterKind.RAW, bytes(cs, 1));
    s.cluster(1, ClusterKind.RAW, bytes(cs, 2)); // sends the first batch
    p.errorNext(new RuntimeException("broker says no"));
    RetriableException e = assertThrows(RetriableException.class, () -> s.cluster(2, ClusterKind.RAW, bytes(cs, 3)));
    assertTrue(e.getMessage().contains("broker says no") && e.getMessage().contains("[job=job range=0]"), e.getMessage());
  }

  /** An attempt that has sent its RangeStarted (unanswered yet) and holds ten zero clusters. */
  private static ChunkSender startedWithTenZeros(MockProducer<String, byte[]> p) {
    ChunkSender s = new ChunkSender(p, "chunks", "job", 0, "a", () -> false);
    s.start("w");
    s.zeros(0, 10);
    return s;
  }

  @Test
  void anUnansweredSendFailsFinishInBoundedTime() {
    ChunkSender s = startedWithTenZeros(producer(false));
    assertThrows(RetriableException.class, () -> s.finish(STATS, "w", 100));
  }

  @Test
  void cancelledAttemptStopsAtTheNextCluster() {
    AtomicBoolean cancelled = new AtomicBoolean();
    ChunkSender s = new ChunkSender(producer(true), "chunks", "job", 0, "a", cancelled::get);
    s.start("w");
    s.zeros(0, 1);
    cancelled.set(true);
    assertThrows(ChunkSender.CancelledException.class, () -> s.cluster(1, ClusterKind.COMPRESSED, bytes(10, 1)));
  }

  @Test
  void aFailedRangeStartedFailsFinish() {
    MockProducer<String, byte[]> p = producer(false);
    ChunkSender s = startedWithTenZeros(p);
    p.errorNext(new RuntimeException("broker says no")); // the RangeStarted, the oldest send
    RetriableException e = assertThrows(RetriableException.class, () -> s.finish(STATS, "w", 100));
    assertTrue(e.getMessage().contains("broker says no"), e.getMessage());
  }

  @Test
  void chunksBeforeStartAreRefused() {
    ChunkSender s = new ChunkSender(producer(true), "chunks", "job", 0, "a", () -> false);
    assertThrows(IllegalStateException.class, () -> s.zeros(0, 1));
    assertThrows(IllegalStateException.class, () -> s.finish(STATS, "w", 100));
  }
}
