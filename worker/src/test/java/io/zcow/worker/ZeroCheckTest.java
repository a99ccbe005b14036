package io.zcow.worker;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class ZeroCheckTest {

  @Test
  void findsOneNonZeroBitAtEveryPosition() {
    int len = 4096;
    ByteBuffer b = ByteBuffer.allocateDirect(len + 128);
    assertTrue(ZeroCheck.isZero(b, 64, len));
    for (int i = 64; i < 64 + len; i++) {
      b.put(i, (byte) (1 << (i % 8)));
      assertFalse(ZeroCheck.isZero(b, 64, len), "bit at " + i);
      b.put(i, (byte) 0);
    }
  }

  @Test
  void looksOnlyAtItsSpan() {
    ByteBuffer b = ByteBuffer.allocateDirect(3 * 4096);
    b.put(4095, (byte) 1).put(8192, (byte) 1);
    assertTrue(ZeroCheck.isZero(b, 4096, 4096));
  }

  @Test
  void fillZerosExactlyItsSpan() {
    ByteBuffer b = ByteBuffer.allocate(100);
    for (int i = 0; i < 100; i++) {
      b.put(i, (byte) 0xff);
    }
    ZeroCheck.fill(b, 3, 77);
    for (int i = 0; i < 100; i++) {
      assertTrue((b.get(i) == 0) == (i >= 3 && i < 77), "byte " + i);
    }
  }

  @Test
  void refusesLengthsItCannotStep() {
    assertThrows(IllegalArgumentException.class, () -> ZeroCheck.isZero(ByteBuffer.allocate(128), 0, 100));
  }
}
