package io.zcow.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.zcow.qcow2.ClusterKind;
import io.zcow.qcow2.Codec;
import io.zcow.qcow2.PayloadDecoder;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Keeps every call a {@link RangeCompressor} makes, checks the ordering guarantees as they arrive,
 * and decodes payloads back into guest bytes.
 */
class RecordingSink implements ClusterSink {
  sealed interface Event permits Zeros, Cluster {
    long first();

    long count();
  }

  record Zeros(long first, long count) implements Event {}

  record Cluster(long first, ClusterKind kind, byte[] payload) implements Event {
    @Override
    public long count() {
      return 1;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Cluster c && c.first == first && c.kind == kind && Arrays.equals(c.payload, payload);
    }

    @Override
    public int hashCode() {
      return Long.hashCode(first) * 31 + Arrays.hashCode(payload);
    }
  }

  final List<Event> events = new ArrayList<>();
  private long next = -1;

  @Override
  public void cluster(long guestCluster, ClusterKind kind, ByteBuffer payload) {
    assertNotEquals(ClusterKind.ZERO, kind, "ZERO clusters go to zeros()");
    expectNext(guestCluster);
    byte[] copy = new byte[payload.remaining()];
    payload.duplicate().get(copy);
    events.add(new Cluster(guestCluster, kind, copy));
    next = guestCluster + 1;
  }

  @Override
  public void zeros(long firstGuestCluster, long count) {
    expectNext(firstGuestCluster);
    if (!events.isEmpty() && events.get(events.size() - 1) instanceof Zeros) {
      throw new AssertionError("zero runs at " + firstGuestCluster + " not coalesced with the run before");
    }
    events.add(new Zeros(firstGuestCluster, count));
    next = firstGuestCluster + count;
  }

  private void expectNext(long cluster) {
    if (next >= 0) {
      assertEquals(next, cluster, "clusters must arrive in order, each once");
    }
  }

  long clustersCovered() {
    return events.stream().mapToLong(Event::count).sum();
  }

  long count(ClusterKind kind) {
    return events.stream().filter(e -> e instanceof Cluster c && c.kind() == kind).count();
  }

  /** The guest bytes of clusters {@code first} to {@code first + count - 1}, from the payloads. */
  byte[] decode(int clusterSize, long first, long count) {
    byte[] out = new byte[Math.toIntExact(count * clusterSize)];
    ByteBuffer cluster = ByteBuffer.allocate(clusterSize);
    try (PayloadDecoder decoder = new PayloadDecoder(clusterSize)) {
      for (Event e : events) {
        if (e instanceof Cluster c) {
          if (c.kind() == ClusterKind.RAW) {
            assertEquals(clusterSize, c.payload().length, "raw payload of cluster " + c.first());
            cluster.clear().put(c.payload());
          } else {
            decoder.decode(Codec.ZSTD, ByteBuffer.wrap(c.payload()), cluster.clear(), "cluster " + c.first());
          }
          System.arraycopy(cluster.array(), 0, out, Math.toIntExact((c.first() - first) * clusterSize), clusterSize);
        }
      }
    }
    return out;
  }
}
