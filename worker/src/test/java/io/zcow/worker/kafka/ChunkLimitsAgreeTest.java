package io.zcow.worker.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.zcow.proto.kafka.ChunkLimits;
import io.zcow.qcow2.ImageGeometry;
import org.junit.jupiter.api.Test;

/** The wire format sizes records for the largest cluster the image format supports. */
class ChunkLimitsAgreeTest {
  @Test
  void largestClusterOfTheWireIsTheImageFormats() {
    assertEquals(1 << ImageGeometry.MAX_CLUSTER_BITS, ChunkLimits.MAX_CLUSTER_SIZE);
  }
}
