package io.zcow.worker;

import io.zcow.source.Source;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;

/** Wraps a source to count what is asked of it; optionally hides its holes. */
class CountingSource implements Source {
  private final Source inner;
  private final boolean seesHoles;
  final AtomicLong bytesRead = new AtomicLong();
  final AtomicLong reads = new AtomicLong();
  final AtomicLong seeks = new AtomicLong();

  CountingSource(Source inner, boolean seesHoles) {
    this.inner = inner;
    this.seesHoles = seesHoles;
  }

  @Override
  public long size() {
    return inner.size();
  }

  @Override
  public String describe() {
    return "counting " + inner.describe();
  }

  @Override
  public int read(ByteBuffer dst, long offset) {
    int n = inner.read(dst, offset);
    reads.incrementAndGet();
    bytesRead.addAndGet(n);
    return n;
  }

  @Override
  public long nextData(long offset) {
    seeks.incrementAndGet();
    return seesHoles ? inner.nextData(offset) : offset;
  }

  @Override
  public long nextHole(long offset) {
    seeks.incrementAndGet();
    return seesHoles ? inner.nextHole(offset) : size();
  }

  @Override
  public void close() {
    inner.close();
  }
}
