package io.zcow.proto;

import java.util.Optional;

/**
 * The record key of a range's task and chunks: {@code "job/range"}. Keys are parsed here only, so
 * every role reads a key the same way; a key is a claim, never trusted over the record's body.
 *
 * @param job a job id ({@link JobIds})
 * @param range range index, 0 or more
 */
public record RangeKey(String job, long range) {
  /** The longest job id a report quotes from an untrusted key: a forger does not size our events. */
  private static final int REPORT_LIMIT = 100;

  public RangeKey {
    if (range < 0) {
      throw new IllegalArgumentException("range must be 0 or more: " + range);
    }
  }

  /** A key of the form job/range with a valid job id and a range index of 0 or more, or empty. */
  public static Optional<RangeKey> parse(String key) {
    if (key == null) {
      return Optional.empty();
    }
    int slash = key.lastIndexOf('/');
    if (slash < 0 || JobIds.problem(key.substring(0, slash)) != null) {
      return Optional.empty();
    }
    String digits = key.substring(slash + 1);
    if (digits.isEmpty() || digits.length() > 18 || !digits.chars().allMatch(c -> c >= '0' && c <= '9')) {
      return Optional.empty();
    }
    return Optional.of(new RangeKey(key.substring(0, slash), Long.parseLong(digits)));
  }

  /** For reports about a record that may be forged: the job its key claims, shortened; "" if none. */
  public static String claimedJob(String key) {
    if (key == null) {
      return "";
    }
    int slash = key.lastIndexOf('/');
    String job = slash < 0 ? key : key.substring(0, slash);
    return job.length() > REPORT_LIMIT ? job.substring(0, REPORT_LIMIT) : job;
  }

  /** For reports: the range its key claims, or -1. */
  public static long claimedRange(String key) {
    return parse(key).map(RangeKey::range).orElse(-1L);
  }

  @Override
  public String toString() {
    return job + "/" + range;
  }
}
