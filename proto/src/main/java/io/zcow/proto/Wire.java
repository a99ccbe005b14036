package io.zcow.proto;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import java.nio.charset.StandardCharsets;
import java.util.function.ToIntFunction;

/**
 * Decoding of record values that never throws: bad bytes become a {@link Decoded.Bad} with a
 * reason fit for a log line and an event, so one bad record cannot end a consumer loop.
 */
public final class Wire {
  /** The only format version this build reads and writes. */
  public static final int FORMAT_VERSION = 1;

  private Wire() {}

  /** A decoded record value, or why it could not be decoded. */
  public sealed interface Decoded<T> {
    record Ok<T>(T value) implements Decoded<T> {}

    record Bad<T>(String reason) implements Decoded<T> {}
  }

  public static Decoded<JobSpec> jobSpec(byte[] bytes) {
    return decode(JobSpec.parser(), bytes, "JobSpec", JobSpec::getFormatVersion);
  }

  public static Decoded<RangeTask> rangeTask(byte[] bytes) {
    return decode(RangeTask.parser(), bytes, "RangeTask", RangeTask::getFormatVersion);
  }

  public static Decoded<ChunkRecord> chunkRecord(byte[] bytes) {
    return decode(ChunkRecord.parser(), bytes, "ChunkRecord", r -> switch (r.getBodyCase()) {
      case BATCH -> r.getBatch().getFormatVersion();
      case DONE -> r.getDone().getFormatVersion();
      case STARTED -> r.getStarted().getFormatVersion();
      case BODY_NOT_SET -> -1;
    });
  }

  public static Decoded<JobEvent> jobEvent(byte[] bytes) {
    return decode(JobEvent.parser(), bytes, "JobEvent", JobEvent::getFormatVersion);
  }

  public static Decoded<WriterCheckpoint> writerCheckpoint(byte[] bytes) {
    return decode(WriterCheckpoint.parser(), bytes, "WriterCheckpoint", WriterCheckpoint::getFormatVersion);
  }

  static <T extends Message> Decoded<T> decode(Parser<T> parser, byte[] bytes, String what, ToIntFunction<T> version) {
    if (bytes == null) {
      return new Decoded.Bad<>(what + ": empty record value (tombstone)");
    }
    T value;
    try {
      value = parser.parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      return new Decoded.Bad<>(what + ": undecodable " + bytes.length + "-byte value (" + e.getMessage() + ")");
    } catch (RuntimeException e) {
      return new Decoded.Bad<>(what + ": undecodable " + bytes.length + "-byte value (" + e + ")");
    }
    int v = version.applyAsInt(value);
    if (v == -1) {
      return new Decoded.Bad<>(what + ": no body");
    }
    if (v != FORMAT_VERSION) {
      return new Decoded.Bad<>(what + ": format version " + v + " is not " + FORMAT_VERSION);
    }
    return new Decoded.Ok<>(value);
  }

  /** The record key of a range: "job/range" ({@link RangeKey}). */
  public static String rangeKey(String jobId, long range) {
    return new RangeKey(jobId, range).toString();
  }

  public static byte[] key(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }
}
