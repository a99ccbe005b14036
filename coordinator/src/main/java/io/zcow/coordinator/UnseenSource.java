package io.zcow.coordinator;

import io.zcow.source.Source;
import java.nio.ByteBuffer;

/**
 * A source the coordinator cannot see (cluster mode: only the workers' hosts can), known by the
 * size the operator gave. Every range counts as data (holes cannot be found from here, so no
 * range is skipped), and it is never read.
 */
public final class UnseenSource implements Source {
  private final String uri;
  private final long size;

  public UnseenSource(String uri, long size) {
    if (size <= 0) {
      throw new IllegalArgumentException("size must be positive: " + size);
    }
    this.uri = uri;
    this.size = size;
  }

  @Override
  public long size() {
    return size;
  }

  @Override
  public String describe() {
    return uri + " (not visible here; " + size + " bytes as given)";
  }

  @Override
  public int read(ByteBuffer dst, long offset) {
    throw new UnsupportedOperationException(describe() + " cannot be read by the coordinator");
  }

  @Override
  public long nextData(long offset) {
    return Math.min(offset, size);
  }

  @Override
  public long nextHole(long offset) {
    return size;
  }

  @Override
  public void close() {}
}
