package io.zcow.proto.kafka;

/**
 * Lets through at most one report (a log line, an event) per interval and counts the ones it
 * held back, so a flood of bad records costs a counter increment each, not an event each: a
 * hostile producer cannot use a role to amplify its traffic. Thread safe.
 */
public final class ReportLimiter {
  private final long intervalMillis;
  private long lastMillis;
  private boolean any;
  private long suppressed;

  /** @param intervalMillis the least time between two reports */
  public ReportLimiter(long intervalMillis) {
    if (intervalMillis < 0) {
      throw new IllegalArgumentException("intervalMillis must not be negative: " + intervalMillis);
    }
    this.intervalMillis = intervalMillis;
  }

  /**
   * Whether to report now.
   *
   * @return -1 to stay silent (the report is counted as held back); otherwise how many reports
   *     were held back since the last one let through
   */
  public synchronized long tryReport(long nowMillis) {
    if (any && nowMillis - lastMillis < intervalMillis) {
      suppressed++;
      return -1;
    }
    any = true;
    lastMillis = nowMillis;
    long held = suppressed;
    suppressed = 0;
    return held;
  }
}
