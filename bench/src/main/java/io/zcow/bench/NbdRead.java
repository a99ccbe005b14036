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
 * threads, each with its own connection, read the whole export, holes included, in reads of
 * {@link #READ_BYTES}: within one read the connection keeps {@code IN_FLIGHT} requests of
 * {@code REQUEST_SIZE} in flight (a new one leaves as each reply lands), so only a read's end
 * drains the pipeline, as nbdcopy's never does.
 *
 * <p>Usage: {@code NbdRead URI CONNECTIONS IN_FLIGHT REQUEST_SIZE}; prints
 * {@code bytes seconds MB/s cpu-seconds} on one line, the CPU time being the whole process's
 * (compiler and collector threads included) while it read.
 */
public final class NbdRead {
  /** Bytes per read() call: 32 requests of 1 MiB, the pipeline refilled between them. */
  static final int READ_BYTES = 32 << 20;
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
      int chunk = Math.max(READ_BYTES, inFlight * source.requestSize());
      AtomicLong next = new AtomicLong();
      AtomicLong bytes = new AtomicLong();
      var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
      long cpuStarted = os.getProcessCpuTime();
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
      double cpu = (os.getProcessCpuTime() - cpuStarted) / 1e9;
      if (bytes.get() != size) {
        throw new IllegalStateException("read " + bytes.get() + " of " + size + " bytes");
      }
      System.out.printf(Locale.ROOT, "%d %.3f %.1f %.3f%n", bytes.get(), secs, bytes.get() / secs / 1e6, cpu);
    }
  }
}
