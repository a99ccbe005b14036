package io.zcow.bench;

import io.zcow.source.nbd.NbdOptions;
import io.zcow.source.nbd.NbdSource;
import io.zcow.source.nbd.NbdUri;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/**
 * zcow's NBD reading alone, the way nbdcopy reads into {@code null:}: {@code CONNECTIONS}
 * threads, each with its own connection, read the whole export in reads of {@code IN_FLIGHT x
 * REQUEST_SIZE} bytes (one read sends that many requests before awaiting replies), holes included.
 *
 * <p>Usage: {@code NbdRead URI CONNECTIONS IN_FLIGHT REQUEST_SIZE}; prints
 * {@code bytes seconds MB/s} on one line.
 */
public final class NbdRead {
  private NbdRead() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 4) {
      System.err.println("usage: NbdRead URI CONNECTIONS IN_FLIGHT REQUEST_SIZE");
      System.exit(2);
    }
    int connections = Integer.parseInt(args[1]);
    int inFlight = Integer.parseInt(args[2]);
    int requestSize = Integer.parseInt(args[3]);
    NbdOptions options = NbdOptions.defaults().withConnections(connections).withRequests(inFlight, requestSize);
    try (NbdSource source = NbdSource.open(NbdUri.parse(args[0]), options)) {
      long size = source.size();
      int chunk = inFlight * source.requestSize();
      AtomicLong next = new AtomicLong();
      AtomicLong bytes = new AtomicLong();
      long started = System.nanoTime();
      List<Thread> threads = new ArrayList<>();
      for (int t = 0; t < connections; t++) {
        Thread th = new Thread(() -> {
          ByteBuffer b = ByteBuffer.allocateDirect(chunk);
          long pos;
          while ((pos = next.getAndAdd(chunk)) < size) {
            b.clear();
            bytes.addAndGet(source.read(b, pos));
          }
        }, "nbd-read-" + t);
        th.start();
        threads.add(th);
      }
      for (Thread th : threads) {
        th.join();
      }
      double secs = (System.nanoTime() - started) / 1e9;
      if (bytes.get() != size) {
        throw new IllegalStateException("read " + bytes.get() + " of " + size + " bytes");
      }
      System.out.printf(Locale.ROOT, "%d %.3f %.1f%n", bytes.get(), secs, bytes.get() / secs / 1e6);
    }
  }
}
