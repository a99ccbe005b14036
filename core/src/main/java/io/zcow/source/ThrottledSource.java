package io.zcow.source;

import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * A source whose reads wait for a {@link ReadRateLimiter} (shared with other sources, so the
 * limit holds for the whole worker). Holes are not read, so they cost nothing. Thread safe as
 * its source is; closing it closes the source.
 */
public final class ThrottledSource implements Source {
  private final Source source;
  private final ReadRateLimiter limiter;

  public ThrottledSource(Source source, ReadRateLimiter limiter) {
    this.source = Objects.requireNonNull(source, "source");
    this.limiter = Objects.requireNonNull(limiter, "limiter");
  }

  @Override
  public long size() {
    return source.size();
  }

  @Override
  public String describe() {
    return source.describe();
  }

  @Override
  public int read(ByteBuffer dst, long offset) {
    limiter.acquire(Math.max(0, Math.min(dst.remaining(), source.size() - offset)));
    return source.read(dst, offset);
  }

  @Override
  public long nextData(long offset) {
    return source.nextData(offset);
  }

  @Override
  public long nextHole(long offset) {
    return source.nextHole(offset);
  }

  @Override
  public void close() {
    source.close();
  }
}
