package io.zcow.qcow2;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Test driver: reads a raw file cluster by cluster, compresses it and feeds an {@link
 * ImageWriter}, in file order or shuffled, from one or several threads. Deliberately independent of
 * the worker module so the image library is tested on its own.
 */
final class ImageFeeder {
  private ImageFeeder() {}

  /** One guest cluster as the writer will receive it. */
  record Entry(long index, ClusterKind kind, byte[] payload) {}

  static List<Entry> entries(Path raw, int clusterSize, int level) {
    List<Entry> out = new ArrayList<>();
    try (FileChannel ch = FileChannel.open(raw);
        ZstdClusterCompressor zstd = new ZstdClusterCompressor(clusterSize, level)) {
      long size = ch.size();
      long clusters = (size + clusterSize - 1) / clusterSize;
      ByteBuffer src = ByteBuffer.allocate(clusterSize);
      ByteBuffer dst = ByteBuffer.allocate(clusterSize);
      for (long c = 0; c < clusters; c++) {
        src.clear();
        java.util.Arrays.fill(src.array(), (byte) 0);
        ch.read(src, c * clusterSize);
        src.clear();
        if (isZero(src.array())) {
          out.add(new Entry(c, ClusterKind.ZERO, new byte[0]));
          continue;
        }
        int n = zstd.compress(src, dst.clear());
        if (n < 0) {
          out.add(new Entry(c, ClusterKind.RAW, src.array().clone()));
        } else {
          out.add(new Entry(c, ClusterKind.COMPRESSED, java.util.Arrays.copyOf(dst.array(), n)));
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out;
  }

  static boolean isZero(byte[] b) {
    for (byte x : b) {
      if (x != 0) {
        return false;
      }
    }
    return true;
  }

  /** Feeds every entry, shuffled with {@code seed} unless it is 0, from {@code threads} threads. */
  static void feed(ImageWriter w, List<Entry> entries, long seed, int threads) throws Exception {
    List<Entry> order = new ArrayList<>(entries);
    if (seed != 0) {
      Collections.shuffle(order, new Random(seed));
    }
    if (threads <= 1) {
      order.forEach(e -> put(w, e));
      return;
    }
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> fs = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int me = t;
        fs.add(pool.submit(() -> {
          for (int i = me; i < order.size(); i += threads) {
            put(w, order.get(i));
          }
        }));
      }
      for (Future<?> f : fs) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }
  }

  static PutResult put(ImageWriter w, Entry e) {
    return w.put(e.index(), e.kind(), ByteBuffer.wrap(e.payload()));
  }
}
