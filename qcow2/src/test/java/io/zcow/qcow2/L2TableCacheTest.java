package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class L2TableCacheTest {

  @Test
  void hitsDoNotReloadAndTheLeastRecentlyUsedTableIsEvicted() {
    List<Long> loads = new ArrayList<>();
    L2TableCache cache = new L2TableCache(2, offset -> {
      loads.add(offset);
      return new long[] {offset};
    });
    long[] a = cache.get(0x10000);
    cache.get(0x20000);
    assertSame(a, cache.get(0x10000)); // hit; 0x20000 is now the eldest
    cache.get(0x30000); // evicts 0x20000
    cache.get(0x10000);
    cache.get(0x20000); // reloaded
    assertEquals(List.of(0x10000L, 0x20000L, 0x30000L, 0x20000L), loads);
    assertEquals(2, cache.size());
  }

  @Test
  void aFailedLoadIsNotCached() {
    int[] calls = {0};
    L2TableCache cache = new L2TableCache(4, offset -> {
      if (calls[0]++ == 0) {
        throw new IllegalStateException("read failed");
      }
      return new long[1];
    });
    assertThrows(IllegalStateException.class, () -> cache.get(0x10000));
    cache.get(0x10000);
    assertEquals(2, calls[0]);
  }

  @Test
  void refusesAnEmptyCapacity() {
    assertThrows(IllegalArgumentException.class, () -> new L2TableCache(0, o -> new long[0]));
  }
}
