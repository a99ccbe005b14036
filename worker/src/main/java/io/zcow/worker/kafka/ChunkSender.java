package io.zcow.worker.kafka;

import io.zcow.proto.kafka.ChunkLimits;
import com.google.protobuf.ByteString;
import io.zcow.RetriableException;
import io.zcow.proto.ChunkBatch;
import io.zcow.proto.ChunkEntry;
import io.zcow.proto.ChunkRecord;
import io.zcow.proto.EntryChecksum;
import io.zcow.proto.EntryKind;
import io.zcow.proto.RangeDone;
import io.zcow.proto.RangeStarted;
import io.zcow.proto.Wire;
import io.zcow.proto.kafka.RecordAuth;
import io.zcow.qcow2.ClusterKind;
import io.zcow.worker.ClusterSink;
import io.zcow.worker.RangeStats;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.RecordMetadata;

/**
 * Turns one attempt at one range into records on the chunks topic: a RangeStarted ({@link
 * #start}), ChunkBatch records of about {@link ChunkLimits#TARGET_BATCH_BYTES}, then a RangeDone;
 * all keyed "job/range", so they land on one partition in the order sent (the producer is
 * idempotent). The RangeStarted starts the writer's clock for the range: a task still waiting in
 * the queue has none, so a long queue does not look like a stalled range. Every entry carries its
 * {@link EntryChecksum}, computed here from the bytes as compressed: whatever changes the entry
 * after this point — its payload, or where it says to write it — fails the writer's check.
 *
 * <p>{@link #finish} returns only once every record of the attempt is acknowledged by the
 * broker, checking each send's own result ({@code flush()} would return after failed sends too):
 * only then may the task be accepted. A failed send fails the range at the next cluster rather
 * than at the end. Used by one thread; the producer may be shared.
 */
public final class ChunkSender implements ClusterSink {
  /** Protobuf framing of one entry beyond its payload: tags, kind, cluster, count, length, checksum. */
  private static final int ENTRY_FRAMING = 32;

  private final Producer<String, byte[]> producer;
  private final RecordAuth auth;
  private final String topic;
  private final String key;
  private final String jobId;
  private final long range;
  private final String attemptId;
  private final BooleanSupplier cancelled;
  private final List<Future<RecordMetadata>> sent = new ArrayList<>();
  private final AtomicReference<Throwable> firstFailure = new AtomicReference<>();
  private ChunkBatch.Builder batch;
  private int batchBytes;
  private int batches;
  private boolean started;

  /** Thrown from the sink when the attempt was cancelled (the task is no longer ours to finish). */
  static final class CancelledException extends RuntimeException {
    CancelledException() {
      super("range cancelled", null, false, false);
    }
  }

  /**
   * Thrown when the broker did not take the attempt's records: the sending failed, not the
   * source, so the attempt does not count against the range (an outage is not the range's doing).
   */
  static final class SendFailedException extends RetriableException {
    SendFailedException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  public ChunkSender(Producer<String, byte[]> producer, String topic, String jobId, long range, String attemptId,
      BooleanSupplier cancelled) {
    this(producer, RecordAuth.NONE, topic, jobId, range, attemptId, cancelled);
  }

  /** @param auth signs every record (the writer refuses unsigned ones when it has a key) */
  public ChunkSender(Producer<String, byte[]> producer, RecordAuth auth, String topic, String jobId, long range,
      String attemptId, BooleanSupplier cancelled) {
    this.producer = producer;
    this.auth = auth;
    this.topic = topic;
    this.key = Wire.rangeKey(jobId, range);
    this.jobId = jobId;
    this.range = range;
    this.attemptId = attemptId;
    this.cancelled = cancelled;
  }

  /**
   * Sends the RangeStarted of this attempt; before any cluster. Its send is checked with the
   * others by {@link #finish}.
   *
   * @param worker who took the range ("worker@host")
   */
  public void start(String worker) {
    if (started) {
      throw new IllegalStateException("[job=" + jobId + " range=" + range + "] attempt " + attemptId
          + " started already");
    }
    checkGoing();
    send(ChunkRecord.newBuilder().setStarted(RangeStarted.newBuilder()
        .setFormatVersion(Wire.FORMAT_VERSION)
        .setJobId(jobId)
        .setRangeIndex(range)
        .setAttemptId(attemptId)
        .setWorker(worker))
        .build());
    started = true;
  }

  @Override
  public void cluster(long guestCluster, ClusterKind kind, ByteBuffer payload) {
    cluster(guestCluster, kind, payload, null);
  }

  /** With the cluster's digest (for the image's manifest) when the compressor made one. */
  @Override
  public void cluster(long guestCluster, ClusterKind kind, ByteBuffer payload, byte[] digest) {
    checkGoing();
    ChunkEntry.Builder b = ChunkEntry.newBuilder()
        .setKind(kind == ClusterKind.RAW ? EntryKind.ENTRY_KIND_RAW : EntryKind.ENTRY_KIND_COMPRESSED)
        .setCluster(guestCluster)
        .setPayload(ByteString.copyFrom(payload.duplicate()));
    if (digest != null) {
      b.setDigest(ByteString.copyFrom(digest));
    }
    ChunkEntry entry = EntryChecksum.seal(b);
    add(entry, entry.getPayload().size() + entry.getDigest().size() + ENTRY_FRAMING);
  }

  /** A run the task's previous digests show unchanged (by-digest jobs). */
  @Override
  public void unchanged(long firstGuestCluster, long count) {
    checkGoing();
    add(EntryChecksum.seal(ChunkEntry.newBuilder().setKind(EntryKind.ENTRY_KIND_UNCHANGED).setCluster(firstGuestCluster)
        .setCount(count)), ENTRY_FRAMING);
  }

  @Override
  public void zeros(long firstGuestCluster, long count) {
    checkGoing();
    add(EntryChecksum.seal(ChunkEntry.newBuilder().setKind(EntryKind.ENTRY_KIND_ZERO).setCluster(firstGuestCluster)
        .setCount(count)), ENTRY_FRAMING);
  }

  private void add(ChunkEntry entry, int bytes) {
    requireStarted();
    if (batch != null && batchBytes + bytes > ChunkLimits.TARGET_BATCH_BYTES) {
      sendBatch();
    }
    if (batch == null) {
      batch = ChunkBatch.newBuilder().setFormatVersion(Wire.FORMAT_VERSION).setJobId(jobId).setRangeIndex(range)
          .setAttemptId(attemptId);
      batchBytes = 0;
    }
    batch.addEntries(entry);
    batchBytes += bytes;
  }

  private void sendBatch() {
    send(ChunkRecord.newBuilder().setBatch(batch).build());
    batches++;
    batch = null;
  }

  private void send(ChunkRecord record) {
    try {
      sent.add(producer.send(auth.record(topic, key, record.toByteArray()), (md, e) -> {
        if (e != null) {
          firstFailure.compareAndSet(null, e);
        }
      }));
    } catch (RuntimeException e) {
      firstFailure.compareAndSet(null, e);
    }
  }

  /** The writer times a range from its RangeStarted: chunks without one would never start its clock. */
  private void requireStarted() {
    if (!started) {
      throw new IllegalStateException("[job=" + jobId + " range=" + range + "] start() must come before the chunks");
    }
  }

  private void checkGoing() {
    if (cancelled.getAsBoolean()) {
      throw new CancelledException();
    }
    Throwable failure = firstFailure.get();
    if (failure != null) {
      throw new SendFailedException("[job=" + jobId + " range=" + range + "] sending chunks to " + topic
          + " failed: " + failure, failure);
    }
  }

  /**
   * Sends the last batch and the RangeDone, then waits for every send of the attempt.
   *
   * @param waitMillis how long to wait for the broker's answers (the producer's delivery timeout
   *     ends every send well before a sensible value)
   * @throws SendFailedException when a send failed or no answer came in time
   * @throws CancelledException when the attempt was cancelled meanwhile
   */
  public void finish(RangeStats stats, String worker, long waitMillis) {
    requireStarted();
    checkGoing();
    if (batch != null) {
      sendBatch();
    }
    send(ChunkRecord.newBuilder().setDone(RangeDone.newBuilder()
        .setFormatVersion(Wire.FORMAT_VERSION)
        .setJobId(jobId)
        .setRangeIndex(range)
        .setAttemptId(attemptId)
        .setZeroClusters(stats.zeroClusters())
        .setRawClusters(stats.rawClusters())
        .setCompressedClusters(stats.compressedClusters())
        .setBytesRead(stats.bytesRead())
        .setPayloadBytes(stats.payloadBytes())
        .setBatches(batches)
        .setWorker(worker))
        .build());
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(waitMillis);
    for (Future<RecordMetadata> f : sent) {
      try {
        f.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      } catch (ExecutionException e) {
        firstFailure.compareAndSet(null, e.getCause());
      } catch (TimeoutException e) {
        firstFailure.compareAndSet(null, e);
        break;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        firstFailure.compareAndSet(null, e);
        break;
      }
    }
    checkGoing();
  }

  /** ChunkBatch records sent so far (RangeStarted and RangeDone not counted). */
  int batches() {
    return batches;
  }
}
