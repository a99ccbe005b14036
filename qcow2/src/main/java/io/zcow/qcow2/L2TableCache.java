package io.zcow.qcow2;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.LongFunction;

/**
 * A small LRU of decoded L2 tables keyed by their host offset, so a reader's memory stays bounded
 * whatever the disk size. Thread safe. A miss loads outside the lock: two threads missing the same
 * table may both load it (harmless: tables are immutable while the image is read), but a slow load
 * never blocks hits on other tables.
 */
final class L2TableCache {
  private final int capacity;
  private final LongFunction<long[]> loader;
  private final Map<Long, long[]> tables;

  L2TableCache(int capacity, LongFunction<long[]> loader) {
    if (capacity < 1) {
      throw new IllegalArgumentException("capacity must be at least 1: " + capacity);
    }
    this.capacity = capacity;
    this.loader = loader;
    this.tables = new LinkedHashMap<>(capacity * 2, 0.75f, true) {
      @Override
      protected boolean removeEldestEntry(Map.Entry<Long, long[]> eldest) {
        return size() > L2TableCache.this.capacity;
      }
    };
  }

  long[] get(long hostOffset) {
    synchronized (tables) {
      long[] t = tables.get(hostOffset);
      if (t != null) {
        return t;
      }
    }
    long[] loaded = loader.apply(hostOffset);
    synchronized (tables) {
      tables.put(hostOffset, loaded);
    }
    return loaded;
  }

  int size() {
    synchronized (tables) {
      return tables.size();
    }
  }
}
