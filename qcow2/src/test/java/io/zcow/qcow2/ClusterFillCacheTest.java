package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The cluster-fill cache against a byte-array model of the file, on a real {@link DirectFile}
 * (O_DIRECT on the build machine's file system, and writeback for some cases).
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ClusterFillCacheTest {
  private static final long WAIT_SECONDS = 20;

  @TempDir Path dir;
  private int files;

  private DirectFile newFile(TargetCache mode) {
    DirectFile f = DirectFile.open(dir.resolve("image-" + files++), mode, true);
    if (mode == TargetCache.DIRECT) {
      assertTrue(f.isDirect(), "the temp directory must support O_DIRECT for these tests");
    }
    return f;
  }

  private static byte[] randomBytes(Random r, int n) {
    byte[] b = new byte[n];
    r.nextBytes(b);
    return b;
  }

  private static ByteBuffer heap(byte[] b) {
    return ByteBuffer.wrap(b);
  }

  /** The file's bytes from 0 to {@code length}, zeros past its end. */
  private static byte[] fileBytes(DirectFile f, int length) {
    byte[] all;
    try {
      all = Files.readAllBytes(f.path());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    assertTrue(all.length <= length, "file is " + all.length + " bytes, expected at most " + length);
    return Arrays.copyOf(all, length);
  }

  private static byte[] cacheRead(ClusterFillCache cache, long offset, int length) {
    ByteBuffer dst = ByteBuffer.allocate(length);
    cache.read(offset, dst);
    return dst.array();
  }

  private static void await(BooleanSupplier condition, String what) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("timed out waiting until " + what + "\n" + threadDump());
      }
      Thread.sleep(1);
    }
  }

  private static String threadDump() {
    StringBuilder sb = new StringBuilder();
    for (ThreadInfo t : ManagementFactory.getThreadMXBean().dumpAllThreads(true, true)) {
      sb.append(t);
    }
    return sb.toString();
  }

  // ---------------------------------------------------------------- deterministic behaviour

  @Test
  void fillsClusterOutOfOrderAndFlushesOnce() throws Exception {
    int cs = 64 << 10;
    try (DirectFile f = newFile(TargetCache.DIRECT);
        ClusterFillCache cache = new ClusterFillCache(f, cs, 4, 4 << 20, 2)) {
      Random r = new Random(1);
      int[] sizes = {1000, 5000, 3000, 20000, 7};
      byte[] model = new byte[cs];
      cache.open(0, true);
      int[] offsets = new int[sizes.length];
      int at = 0;
      for (int i = 0; i < sizes.length; i++) {
        cache.allocate(0, sizes[i]);
        offsets[i] = at;
        System.arraycopy(randomBytes(r, sizes[i]), 0, model, at, sizes[i]);
        at += sizes[i];
      }
      cache.close(0);
      // Last extent first, each from its own thread.
      for (int i = sizes.length - 1; i >= 0; i--) {
        int off = offsets[i];
        int len = sizes[i];
        Thread t = new Thread(() -> cache.fill(off, ByteBuffer.wrap(model, off, len)), "filler-" + i);
        t.start();
        t.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
        assertFalse(t.isAlive(), "fill " + i + " did not return");
        if (i > 0) {
          assertEquals(0, f.writes(), "nothing is written before every allocated byte has arrived");
        }
      }
      cache.flush();
      assertEquals(1, f.writes(), "the cluster is written once");
      assertEquals(cs, f.bytesWritten(), "whole");
      assertArrayEquals(model, fileBytes(f, cs), "payloads back to back, zeros after them");
    }
  }

  @Test
  void coalescesAdjacentReadyClustersIntoFewWrites() throws Exception {
    int cs = 64 << 10;
    int clusters = 256;
    try (DirectFile f = newFile(TargetCache.DIRECT);
        ClusterFillCache cache = new ClusterFillCache(f, cs, 64, 4 << 20, 2)) {
      Random r = new Random(2);
      byte[] model = randomBytes(r, clusters * cs);
      for (int h = 0; h < clusters; h++) {
        cache.open(h, false);
        cache.allocate(h, cs);
        cache.close(h);
        cache.fill((long) h * cs, ByteBuffer.wrap(model, h * cs, cs));
      }
      cache.flush();
      assertTrue(f.writes() <= clusters / 8, "expected coalesced writes, got " + f.writes() + " for " + clusters + " clusters");
      assertEquals((long) clusters * cs, f.bytesWritten(), "every cluster written exactly once");
      assertArrayEquals(model, fileBytes(f, clusters * cs));
    }
  }

  @Test
  void flushWritesTheOpenClusterPaddedAndKeepsItForLaterFills() throws Exception {
    int cs = 64 << 10;
    try (DirectFile f = newFile(TargetCache.DIRECT);
        ClusterFillCache cache = new ClusterFillCache(f, cs, 8, 4 << 20, 1)) {
      int a = f.alignment();
      Random r = new Random(3);
      byte[] model = new byte[2 * cs];

      cache.open(0, true);
      cache.allocate(0, 100);
      System.arraycopy(randomBytes(r, 100), 0, model, 0, 100);
      cache.fill(0, ByteBuffer.wrap(model, 0, 100));
      cache.flush();
      assertEquals(a, Files.size(f.path()), "the open cluster goes out padded to the alignment");
      assertEquals(1, f.writes());
      assertArrayEquals(Arrays.copyOf(model, a), fileBytes(f, a));
      assertArrayEquals(Arrays.copyOf(model, 100), cacheRead(cache, 0, 100), "and stays in the cache");

      // More payloads in the same cluster, the last one crossing into cluster 1.
      cache.allocate(0, 5000);
      System.arraycopy(randomBytes(r, 5000), 0, model, 100, 5000);
      cache.fill(100, ByteBuffer.wrap(model, 100, 5000));
      int tail = cs - 5100;
      cache.allocate(0, tail);
      cache.close(0);
      cache.open(1, true);
      cache.allocate(1, 300);
      System.arraycopy(randomBytes(r, tail + 300), 0, model, 5100, tail + 300);
      cache.fill(5100, ByteBuffer.wrap(model, 5100, tail + 300));
      cache.flush();
      assertArrayEquals(Arrays.copyOf(model, cs + a), fileBytes(f, cs + a),
          "cluster 0 rewritten whole, cluster 1 padded");

      cache.allocate(1, 1234);
      System.arraycopy(randomBytes(r, 1234), 0, model, cs + 300, 1234);
      cache.fill(cs + 300, ByteBuffer.wrap(model, cs + 300, 1234));
      cache.close(1);
      cache.flush();
      assertArrayEquals(model, fileBytes(f, 2 * cs));
      assertEquals(a + cs + a + cs, f.bytesWritten(), "two padded writes, and each cluster once whole");
    }
  }

  @ParameterizedTest
  @EnumSource(value = TargetCache.class, names = {"DIRECT", "WRITEBACK"})
  void readServesCachedClustersFromMemoryAndWrittenOnesFromTheFile(TargetCache mode) throws Exception {
    int cs = 16 << 10;
    try (DirectFile f = newFile(mode);
        ClusterFillCache cache = new ClusterFillCache(f, cs, 4, 4 << 20, 1)) {
      Random r = new Random(4);
      byte[] model = new byte[5 * cs];
      for (int h = 0; h < 4; h++) {
        cache.open(h, false);
        cache.allocate(h, cs);
        cache.close(h);
        System.arraycopy(randomBytes(r, cs), 0, model, h * cs, cs);
        cache.fill((long) h * cs, ByteBuffer.wrap(model, h * cs, cs));
      }
      cache.flush();
      // Cluster 4 takes slot 0 and stays open: its bytes exist only in memory.
      cache.open(4, true);
      cache.allocate(4, 3000);
      System.arraycopy(randomBytes(r, 3000), 0, model, 4 * cs, 3000);
      cache.fill(4L * cs, ByteBuffer.wrap(model, 4 * cs, 3000));
      assertEquals(4L * cs, Files.size(f.path()), "cluster 4 is not in the file yet");

      assertArrayEquals(Arrays.copyOfRange(model, 4 * cs, 4 * cs + 3000), cacheRead(cache, 4L * cs, 3000), "from memory");
      assertArrayEquals(Arrays.copyOfRange(model, 0, cs), cacheRead(cache, 0, cs),
          "cluster 0 from the file, not from the slot cluster 4 now occupies");
      assertArrayEquals(Arrays.copyOfRange(model, 123, 123 + 777), cacheRead(cache, 123, 777), "unaligned");
      int from = 3 * cs + 1001;
      assertArrayEquals(Arrays.copyOfRange(model, from, 4 * cs + 2500), cacheRead(cache, from, 4 * cs + 2500 - from),
          "a read across a written and a cached cluster");

      ByteBuffer direct = DirectFile.allocateAligned(cs, f.alignment());
      cache.read(cs, direct);
      byte[] got = new byte[cs];
      direct.get(0, got);
      assertArrayEquals(Arrays.copyOfRange(model, cs, 2 * cs), got, "into an aligned direct buffer");
      cache.close(4);
      cache.flush();
    }
  }

  @Test
  void fillLargerThanAllocationThrows() throws Exception {
    int cs = 16 << 10;
    try (DirectFile f = newFile(TargetCache.DIRECT);
        ClusterFillCache cache = new ClusterFillCache(f, cs, 4, 4 << 20, 1)) {
      cache.open(0, true);
      cache.allocate(0, 100);
      assertThrows(IllegalStateException.class, () -> cache.fill(0, heap(new byte[101])));
    }
  }

  @Test
  void fillRunningIntoAClusterThatIsNotOpenThrows() throws Exception {
    int cs = 16 << 10;
    try (DirectFile f = newFile(TargetCache.DIRECT);
        ClusterFillCache cache = new ClusterFillCache(f, cs, 4, 4 << 20, 1)) {
      cache.open(0, true);
      cache.allocate(0, cs);
      assertThrows(IllegalStateException.class, () -> cache.fill(cs - 50, heap(new byte[100])));
      assertThrows(IllegalStateException.class, () -> cache.fill(2L * cs, heap(new byte[10])));
    }
  }

  @Test
  void allocatingPastTheClusterOrIntoAClosedClusterThrows() throws Exception {
    int cs = 16 << 10;
    try (DirectFile f = newFile(TargetCache.DIRECT);
        ClusterFillCache cache = new ClusterFillCache(f, cs, 4, 4 << 20, 1)) {
      cache.open(0, true);
      cache.allocate(0, cs - 10);
      assertThrows(IllegalStateException.class, () -> cache.allocate(0, 11));
      cache.close(0);
      assertThrows(IllegalStateException.class, () -> cache.allocate(0, 1));
      assertThrows(IllegalStateException.class, () -> cache.allocate(1, 1), "never opened");
    }
  }

  @Test
  void constructorRejectsBadArguments() throws Exception {
    try (DirectFile f = newFile(TargetCache.DIRECT)) {
      int cs = 64 << 10;
      assertTrue(assertThrows(IllegalArgumentException.class, () -> new ClusterFillCache(f, cs, 3, 4 << 20, 1))
          .getMessage().contains("capacity"));
      assertTrue(assertThrows(IllegalArgumentException.class, () -> new ClusterFillCache(f, cs, 4, 4 << 20, 0))
          .getMessage().contains("writerThreads"));
      assertTrue(assertThrows(IllegalArgumentException.class,
          () -> new ClusterFillCache(f, f.alignment() + 512, 4, 4 << 20, 1)).getMessage().contains("clusterSize"));
      assertTrue(assertThrows(IllegalArgumentException.class, () -> new ClusterFillCache(f, 2 << 20, 1024, 4 << 20, 1))
          .getMessage().contains("capacity"));
    }
  }

  /**
   * Backpressure: opening a cluster whose slot still holds an older, unfilled cluster waits until
   * that cluster is filled and written. With 16 slots and 4-cluster runs the older cluster is
   * queued because open() is waiting for it (not because its run is long).
   */
  @ParameterizedTest
  @CsvSource({"4, 4194304", "16, 16384"})
  void openBlocksUntilTheOlderClusterInItsSlotIsFilledAndWritten(int capacity, int coalesceBytes) throws Exception {
    int cs = 4096;
    try (DirectFile f = newFile(TargetCache.DIRECT);
        ClusterFillCache cache = new ClusterFillCache(f, cs, capacity, coalesceBytes, 2)) {
      Random r = new Random(5);
      byte[] model = randomBytes(r, (capacity + 1) * cs);
      for (int h = 0; h < capacity; h++) {
        cache.open(h, false);
        cache.allocate(h, cs);
        cache.close(h);
      }
      for (int h = 1; h < capacity; h++) {
        cache.fill((long) h * cs, ByteBuffer.wrap(model, h * cs, cs));
      }
      CountDownLatch opened = new CountDownLatch(1);
      AtomicReference<Throwable> error = new AtomicReference<>();
      Thread opener = new Thread(() -> {
        try {
          cache.open(capacity, false);
          opened.countDown();
        } catch (Throwable t) {
          error.set(t);
        }
      }, "opener");
      opener.setDaemon(true);
      opener.start();
      await(() -> opener.getState() == Thread.State.WAITING || opener.getState() == Thread.State.TERMINATED,
          "the opener blocks or returns");
      assertNotEquals(Thread.State.TERMINATED, opener.getState(), "open() returned while cluster 0 was unfilled");
      assertFalse(opened.await(200, TimeUnit.MILLISECONDS), "open() returned while cluster 0 was unfilled");

      cache.fill(0, ByteBuffer.wrap(model, 0, cs));
      assertTrue(opened.await(WAIT_SECONDS, TimeUnit.SECONDS), "open() did not return after cluster 0 was filled\n" + threadDump());
      assertEquals(null, error.get());
      assertArrayEquals(Arrays.copyOf(model, cs), Arrays.copyOf(fileBytes(f, (capacity + 1) * cs), cs),
          "cluster 0 is in the file before its slot is reused");

      cache.allocate(capacity, cs);
      cache.close(capacity);
      cache.fill((long) capacity * cs, ByteBuffer.wrap(model, capacity * cs, cs));
      cache.flush();
      assertArrayEquals(model, fileBytes(f, (capacity + 1) * cs));
    }
  }

  @Test
  void openWritesAReadyClusterThatWasWaitingForALongerRun() throws Exception {
    int cs = 4096;
    int capacity = 16;
    try (DirectFile f = newFile(TargetCache.DIRECT);
        ClusterFillCache cache = new ClusterFillCache(f, cs, capacity, 4 * cs, 1)) {
      Random r = new Random(6);
      byte[] model = randomBytes(r, (capacity + 1) * cs);
      for (int h = 0; h < capacity; h++) {
        cache.open(h, false);
        cache.allocate(h, cs);
        cache.close(h);
      }
      cache.fill(0, ByteBuffer.wrap(model, 0, cs));
      assertEquals(0, f.writes(), "a lone ready cluster waits for a run of 4");
      assertTimeoutPreemptively(Duration.ofSeconds(WAIT_SECONDS), () -> cache.open(capacity, false),
          () -> "open() did not write the ready cluster in its slot\n" + threadDump());
      assertArrayEquals(Arrays.copyOf(model, cs), Arrays.copyOf(fileBytes(f, (capacity + 1) * cs), cs));
      cache.allocate(capacity, cs);
      cache.close(capacity);
      for (int h = 1; h <= capacity; h++) {
        cache.fill((long) h * cs, ByteBuffer.wrap(model, h * cs, cs));
      }
      cache.flush();
      assertArrayEquals(model, fileBytes(f, (capacity + 1) * cs));
      assertEquals((long) (capacity + 1) * cs, f.bytesWritten());
    }
  }

  @Test
  void failedWriteIsThrownByFlush() throws Exception {
    int cs = 4096;
    DirectFile f = newFile(TargetCache.DIRECT);
    try (ClusterFillCache cache = new ClusterFillCache(f, cs, 4, cs, 1)) {
      f.close(); // every write now fails
      cache.open(0, false);
      cache.allocate(0, cs);
      cache.close(0);
      cache.fill(0, heap(new byte[cs]));
      assertThrows(RuntimeException.class, cache::flush);
    }
  }

  @Test
  void anErrorOnAWriterThreadIsThrownByFlushInsteadOfHangingIt() throws Exception {
    int cs = 4096;
    try (DirectFile f = newFile(TargetCache.DIRECT);
        ClusterFillCache cache = new ClusterFillCache(f, cs, 4, cs, 1)) {
      f.guardWrites(() -> {
        throw new OutOfMemoryError("injected: no direct memory");
      });
      cache.open(0, false);
      cache.allocate(0, cs);
      cache.close(0);
      cache.fill(0, heap(new byte[cs]));
      RuntimeException e = assertTimeoutPreemptively(java.time.Duration.ofSeconds(WAIT_SECONDS),
          () -> assertThrows(RuntimeException.class, cache::flush));
      assertTrue(e.getMessage().contains("injected: no direct memory"), e.getMessage());
    }
  }

  @Test
  void aFullFileSystemReleasesAProducerWaitingForASlotWithATypedFailure() throws Exception {
    int cs = 4096;
    try (DirectFile f = newFile(TargetCache.DIRECT);
        // Runs of two clusters: the ready clusters 0 and 2 are not neighbours, so no write starts
        // before a producer needs a slot (a write failing earlier would fail an earlier call).
        ClusterFillCache cache = new ClusterFillCache(f, cs, 8, 2 * cs, 1)) {
      DirectFile.SPACE_LEFT.put(f.path().toAbsolutePath().normalize().getParent(), new java.util.concurrent.atomic.AtomicLong(0));
      try {
        for (long h = 0; h < 4; h += 2) {
          cache.open(h, false);
          cache.allocate(h, cs);
          cache.close(h);
          cache.fill(h * cs, heap(new byte[cs]));
        }
        // Slot 0 is needed again: the producer waits for cluster 0's write, which fails.
        io.zcow.TargetFullException e = assertTimeoutPreemptively(java.time.Duration.ofSeconds(WAIT_SECONDS),
            () -> assertThrows(io.zcow.TargetFullException.class, () -> cache.open(8, false)));
        assertTrue(e.getMessage().startsWith("target file system is full: write of"), e.getMessage());
        assertThrows(io.zcow.TargetFullException.class, cache::flush);
      } finally {
        DirectFile.SPACE_LEFT.clear();
      }
    }
  }

  // ------------------------------------------------------------- rejected fills (see report)

  /** A fill refused because its cluster is not in the cache must not damage the cluster that is. */
  @Test
  void rejectedFillIntoAClusterNotInTheCacheLeavesTheClusterInItsSlotIntact() throws Exception {
    int cs = 4096;
    try (DirectFile f = newFile(TargetCache.DIRECT);
        ClusterFillCache cache = new ClusterFillCache(f, cs, 4, cs, 1)) {
      byte[] model = new byte[2 * cs];
      byte[] payload = randomBytes(new Random(7), 100);
      System.arraycopy(payload, 0, model, cs, 100);
      cache.open(1, true);
      cache.allocate(1, 100);
      cache.fill(cs, heap(payload));
      byte[] stray = new byte[100];
      Arrays.fill(stray, (byte) 0x5a);
      // Cluster 5 would use slot 1, which cluster 1 holds.
      assertThrows(IllegalStateException.class, () -> cache.fill(5L * cs, heap(stray)));
      assertArrayEquals(payload, cacheRead(cache, cs, 100), "cluster 1 as read from the cache");
      cache.close(1);
      cache.flush();
      assertArrayEquals(model, fileBytes(f, 2 * cs), "cluster 1 as written");
    }
  }

  /** A fill refused as larger than its allocation must leave the unallocated bytes zero. */
  @Test
  void rejectedOversizedFillLeavesTheRestOfAPackedClusterZero() throws Exception {
    int cs = 4096;
    try (DirectFile f = newFile(TargetCache.DIRECT);
        ClusterFillCache cache = new ClusterFillCache(f, cs, 4, cs, 1)) {
      byte[] model = new byte[cs];
      byte[] payload = randomBytes(new Random(8), 100);
      System.arraycopy(payload, 0, model, 0, 100);
      cache.open(0, true);
      cache.allocate(0, 100);
      byte[] tooLong = new byte[200];
      Arrays.fill(tooLong, (byte) 0x5a);
      assertThrows(IllegalStateException.class, () -> cache.fill(0, heap(tooLong)));
      cache.fill(0, heap(payload));
      cache.close(0);
      cache.flush();
      assertArrayEquals(model, fileBytes(f, cs), "bytes 100..199 were never allocated");
    }
  }

  // -------------------------------------------------------------------- randomized, with model

  static IntStream seeds() {
    return IntStream.range(0, 50);
  }

  @ParameterizedTest(name = "seed {0}")
  @MethodSource("seeds")
  void concurrentOutOfOrderFillsMatchTheModel(int seed) {
    TargetCache mode = seed % 5 == 4 ? TargetCache.WRITEBACK : TargetCache.DIRECT;
    assertTimeoutPreemptively(Duration.ofSeconds(60), () -> new RandomRun(seed, mode).run(),
        () -> "seed " + seed + " (" + mode + ") stalled\n" + threadDump());
  }

  private record Extent(long offset, int length) {}

  /**
   * Extents waiting to be filled; fillers take a random one, so fills land out of order. Lazy
   * fillers ({@code hold > 0}) leave up to {@code hold} extents pending unless the allocator is
   * waiting in open() or flush(), so that opens find the older cluster in their slot unfilled.
   */
  private static final class Pending {
    private final ArrayList<Extent> items = new ArrayList<>();
    private final int hold;
    private boolean allocatorWaits;
    private boolean done;

    Pending(int hold) {
      this.hold = hold;
    }

    synchronized void add(Extent e) {
      items.add(e);
      notifyAll();
    }

    synchronized void allocatorWaits(boolean waits) {
      allocatorWaits = waits;
      notifyAll();
    }

    synchronized Extent take(Random r) throws InterruptedException {
      while (!done && (items.isEmpty() || (items.size() <= hold && !allocatorWaits))) {
        wait();
      }
      if (items.isEmpty()) {
        return null;
      }
      int i = r.nextInt(items.size());
      Extent e = items.get(i);
      items.set(i, items.get(items.size() - 1));
      items.remove(items.size() - 1);
      return e;
    }

    synchronized void finish() {
      done = true;
      notifyAll();
    }
  }

  /**
   * One randomized run: an allocator thread (this one) opens, allocates and closes clusters in
   * file order with the rules of {@link ByteAllocator}; filler threads fill the extents in random
   * order; a reader checks completed extents through {@link ClusterFillCache#read}; flushes in the
   * middle check the whole file.
   */
  private final class RandomRun {
    final int seed;
    final TargetCache mode;
    final Random rnd;
    final int cs;
    final int capacity;
    final int coalesceBytes;
    final int writerThreads;
    final int fillerThreads;
    final int targetClusters;
    final byte[] model;
    final AtomicIntegerArray allocatedBytes; // per cluster; written by the allocator thread only
    final AtomicIntegerArray filledBytes; // per cluster, counted after fill() returns
    final boolean[] opened;
    final Pending pending;
    final ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
    final List<Extent> completed = new ArrayList<>(); // guarded by itself
    volatile boolean stop;

    DirectFile file;
    ClusterFillCache cache;
    long next;
    long cursor = -1;
    int used;
    long padded;
    int openedCount;
    int payloads;
    int crossings;
    int wholes;
    int gaps;
    int flushesWithOpenCluster;
    int contendedOpens;
    volatile int reads;
    int[] extentsIn;

    RandomRun(int seed, TargetCache mode) {
      this.seed = seed;
      this.mode = mode;
      this.rnd = new Random(seed * 7919L + 17);
      this.cs = new int[] {4096, 8192, 16384, 65536}[rnd.nextInt(4)];
      this.capacity = 4 + rnd.nextInt(13);
      this.coalesceBytes = new int[] {cs, 4 * cs, 1 << 20, 4 << 20}[rnd.nextInt(4)];
      this.writerThreads = 1 + rnd.nextInt(3);
      this.fillerThreads = 2 + rnd.nextInt(3);
      this.pending = new Pending(rnd.nextBoolean() ? 0 : 2 * capacity + rnd.nextInt(6 * capacity));
      int bytes = (2 << 20) + rnd.nextInt(2 << 20);
      this.targetClusters = Math.max(bytes / cs, 6 * capacity);
      int maxClusters = targetClusters + 4;
      this.model = new byte[maxClusters * cs];
      this.allocatedBytes = new AtomicIntegerArray(maxClusters);
      this.filledBytes = new AtomicIntegerArray(maxClusters);
      this.opened = new boolean[maxClusters];
      this.extentsIn = new int[maxClusters];
    }

    String describe() {
      return String.format("seed %d: %s, cluster %d, %d slots, coalesce %d, %d writers, %d fillers holding %d",
          seed, mode, cs, capacity, coalesceBytes, writerThreads, fillerThreads, pending.hold);
    }

    void run() throws Exception {
      file = newFile(mode);
      cache = new ClusterFillCache(file, cs, capacity, coalesceBytes, writerThreads);
      List<Thread> threads = new ArrayList<>();
      for (int i = 0; i < fillerThreads; i++) {
        Random fr = new Random(seed * 31L + i);
        threads.add(new Thread(() -> fillLoop(fr), "filler-" + seed + "-" + i));
      }
      Random rr = new Random(seed * 131L);
      threads.add(new Thread(() -> readLoop(rr), "reader-" + seed));
      threads.forEach(t -> {
        t.setDaemon(true);
        t.start();
      });
      try {
        allocateAll();
        closeCursor();
        pending.allocatorWaits(true);
        cache.flush();
        pending.finish();
        stop = true;
        for (Thread t : threads) {
          t.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
          assertFalse(t.isAlive(), t.getName() + " did not finish");
        }
        checkErrors();
        int length = (int) (next * cs);
        assertArrayEquals(Arrays.copyOf(model, length), fileBytes(file, length), describe() + ": final file");
        assertArrayEquals(Arrays.copyOf(model, length), cacheRead(cache, 0, length), describe() + ": final read()");
        assertEquals((long) openedCount * cs + padded, file.bytesWritten(),
            describe() + ": every cluster written once whole, plus the padded writes of flushes");
        long multiExtent = Arrays.stream(extentsIn).filter(n -> n >= 3).count();
        assertTrue(crossings > 0 && wholes > 0 && gaps > 0 && flushesWithOpenCluster > 0 && multiExtent > 0,
            describe() + ": the run did not exercise everything: " + this);
      } finally {
        stop = true;
        pending.finish();
        cache.close();
        file.close();
      }
    }

    @Override
    public String toString() {
      return String.format("payloads %d, crossings %d, whole %d, gaps %d, flushes with open cluster %d,"
              + " contended opens %d, reads %d, clusters %d, writes %d",
          payloads, crossings, wholes, gaps, flushesWithOpenCluster, contendedOpens, reads, next, file.writes());
    }

    void checkErrors() {
      if (!errors.isEmpty()) {
        AssertionError e = new AssertionError(describe() + ": " + errors.size() + " errors in other threads");
        errors.forEach(e::addSuppressed);
        throw e;
      }
    }

    void allocateAll() {
      int[] flushAt = {rnd.nextInt(targetClusters / 4) + 1, targetClusters / 4 + rnd.nextInt(targetClusters / 4),
          targetClusters / 2 + rnd.nextInt(targetClusters / 4), 3 * targetClusters / 4 + rnd.nextInt(targetClusters / 4)};
      int flushes = 0;
      while (next < targetClusters) {
        checkErrors();
        if (flushes < flushAt.length && next >= flushAt[flushes]) {
          flushes++;
          flushAndCheck();
          continue;
        }
        int op = rnd.nextInt(100);
        if (gaps == 0 && next >= targetClusters / 2) {
          gap();
        } else if (op < 82) {
          payload(payloadLength());
        } else if (op < 98) {
          whole();
        } else {
          gap();
        }
      }
    }

    int payloadLength() {
      int kind = rnd.nextInt(20);
      if (kind == 0) {
        return 1 + rnd.nextInt(16);
      } else if (kind < 12) {
        return 1 + rnd.nextInt(cs / 4);
      } else if (kind < 18) {
        return cs / 4 + rnd.nextInt(cs / 2);
      } else {
        return cs - 1 - rnd.nextInt(cs / 8);
      }
    }

    /** Takes the next cluster, closing the cursor first if allocation is a capacity ahead of it. */
    long take() {
      if (cursor >= 0 && next - cursor >= capacity - 1) {
        closeCursor();
      }
      return next++;
    }

    void closeCursor() {
      if (cursor >= 0) {
        cache.close(cursor);
        cursor = -1;
        used = 0;
      }
    }

    void open(long h, boolean packed) {
      long older = h - capacity;
      if (older >= 0 && opened[(int) older] && filledBytes.get((int) older) < allocatedBytes.get((int) older)) {
        contendedOpens++;
      }
      pending.allocatorWaits(true);
      cache.open(h, packed);
      pending.allocatorWaits(false);
      opened[(int) h] = true;
      openedCount++;
      if (older >= 0 && opened[(int) older]) {
        // Its slot is free again, so it must be in the file, whole and final.
        int o = (int) older * cs;
        byte[] onDisk = new byte[cs];
        AlignedIo.read(file, o, ByteBuffer.wrap(onDisk));
        assertArrayEquals(Arrays.copyOfRange(model, o, o + cs), onDisk,
            describe() + ": cluster " + older + " in the file when " + h + " took its slot");
      }
    }

    void allocate(long h, int bytes) {
      cache.allocate(h, bytes);
      allocatedBytes.addAndGet((int) h, bytes);
    }

    void payload(int length) {
      if (cursor < 0) {
        cursor = take();
        used = 0;
        open(cursor, true);
      }
      long start = cursor * cs + used;
      int avail = cs - used;
      if (length <= avail) {
        allocate(cursor, length);
        used += length;
        if (used == cs) {
          closeCursor();
        }
      } else if (next == cursor + 1) {
        allocate(cursor, avail);
        closeCursor();
        cursor = take();
        open(cursor, true);
        allocate(cursor, length - avail);
        used = length - avail;
        crossings++;
      } else {
        closeCursor();
        payload(length);
        return;
      }
      payloads++;
      dispatch(start, length);
    }

    void whole() {
      long h = take();
      open(h, false);
      allocate(h, cs);
      cache.close(h);
      wholes++;
      dispatch(h * cs, cs);
    }

    /** A cluster the cache never sees (a refcount block is written past it). */
    void gap() {
      take();
      gaps++;
    }

    void dispatch(long offset, int length) {
      for (long h = offset / cs; h <= (offset + length - 1) / cs; h++) {
        extentsIn[(int) h]++;
      }
      byte[] data = randomBytes(rnd, length);
      System.arraycopy(data, 0, model, (int) offset, length);
      pending.add(new Extent(offset, length));
    }

    void flushAndCheck() {
      if (cursor >= 0) {
        padded += AlignedIo.roundUp(used, file.alignment());
        flushesWithOpenCluster++;
      }
      pending.allocatorWaits(true);
      cache.flush();
      pending.allocatorWaits(false);
      checkErrors();
      int length = (int) (next * cs);
      assertArrayEquals(Arrays.copyOf(model, length), fileBytes(file, length),
          describe() + ": file after a flush at cluster " + next + ", cursor " + cursor + " holding " + used + " bytes");
    }

    void fillLoop(Random r) {
      try {
        Extent e;
        while ((e = pending.take(r)) != null) {
          ByteBuffer src = source(r, e);
          int pos = src.position();
          int rem = src.remaining();
          cache.fill(e.offset(), src);
          if (src.position() != pos || src.remaining() != rem) {
            throw new AssertionError("fill moved its source buffer");
          }
          long off = e.offset();
          int left = e.length();
          while (left > 0) {
            int k = (int) Math.min(left, cs - off % cs);
            filledBytes.addAndGet((int) (off / cs), k);
            off += k;
            left -= k;
          }
          synchronized (completed) {
            completed.add(e);
          }
        }
      } catch (Throwable t) {
        errors.add(t);
      }
    }

    ByteBuffer source(Random r, Extent e) {
      int off = (int) e.offset();
      switch (r.nextInt(3)) {
        case 0:
          return ByteBuffer.wrap(model, off, e.length());
        case 1: {
          int pad = r.nextInt(64);
          ByteBuffer b = ByteBuffer.allocateDirect(pad + e.length() + 7);
          b.position(pad);
          b.put(model, off, e.length());
          return b.flip().position(pad);
        }
        default:
          return ByteBuffer.wrap(model, off, e.length()).asReadOnlyBuffer();
      }
    }

    void readLoop(Random r) {
      try {
        while (!stop) {
          Extent e;
          synchronized (completed) {
            e = completed.isEmpty() ? null : completed.get(r.nextInt(completed.size()));
          }
          if (e == null) {
            Thread.yield();
            continue;
          }
          int off = (int) e.offset();
          byte[] expected = Arrays.copyOfRange(model, off, off + e.length());
          byte[] got = cacheRead(cache, e.offset(), e.length());
          if (!Arrays.equals(expected, got)) {
            throw new AssertionError(String.format("read() of the filled extent at 0x%x+%d differs from the model",
                e.offset(), e.length()));
          }
          reads++;
          Thread.yield();
        }
      } catch (Throwable t) {
        errors.add(t);
      }
    }
  }
}
