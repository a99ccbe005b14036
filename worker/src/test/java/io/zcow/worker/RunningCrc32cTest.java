package io.zcow.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.util.Random;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

class RunningCrc32cTest {

  @Test
  void matchesCrc32cOverPiecesAndZeroRunsOfAnyLength() {
    Random r = new Random(42);
    RunningCrc32c running = new RunningCrc32c();
    CRC32C plain = new CRC32C();
    ByteBuffer zeros = ByteBuffer.allocateDirect(1 << 20);
    long[] zeroRuns = {0, 1, 3, 7, 8, 4096, 65536 + 5, (1 << 20) * 3 + 17};
    assertEquals(plain.getValue(), running.value(), "nothing fed");
    for (long run : zeroRuns) {
      byte[] piece = new byte[r.nextInt(5000)];
      r.nextBytes(piece);
      running.update(ByteBuffer.wrap(piece));
      plain.update(piece);
      running.updateZeros(run);
      for (long left = run; left > 0; ) {
        int n = (int) Math.min(left, zeros.capacity());
        plain.update(zeros.clear().limit(n));
        left -= n;
      }
      assertEquals(plain.getValue(), running.value(), "after a zero run of " + run);
    }
  }

  @Test
  void zeroRunOfGibibytesMatchesFeedingThem() {
    long n = (1L << 30) + 4099; // beyond int range of bits, and not a power of two
    RunningCrc32c running = new RunningCrc32c();
    running.update(ByteBuffer.wrap(new byte[] {1, 2, 3}));
    running.updateZeros(n);
    CRC32C plain = new CRC32C();
    plain.update(new byte[] {1, 2, 3});
    ByteBuffer zeros = ByteBuffer.allocateDirect(16 << 20);
    for (long left = n; left > 0; ) {
      int k = (int) Math.min(left, zeros.capacity());
      plain.update(zeros.clear().limit(k));
      left -= k;
    }
    assertEquals(plain.getValue(), running.value());
  }

  @Test
  void zeroRunsSplitAnyWayGiveTheSameCrc() {
    RunningCrc32c whole = new RunningCrc32c();
    whole.updateZeros(16L << 40);
    RunningCrc32c halves = new RunningCrc32c();
    halves.updateZeros(8L << 40);
    halves.updateZeros(8L << 40);
    assertEquals(whole.value(), halves.value());
  }

  @Test
  void resetStartsAgain() {
    RunningCrc32c c = new RunningCrc32c();
    c.update(ByteBuffer.wrap(new byte[] {9}));
    c.reset();
    c.update(ByteBuffer.wrap(new byte[] {5}));
    CRC32C plain = new CRC32C();
    plain.update(5);
    assertEquals(plain.getValue(), c.value());
  }
}
