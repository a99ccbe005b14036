package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The byte allocator's placement rules, against a store that records (and checks) what the
 * allocator asks of it, with real refcounts on a temp file. 4 KiB clusters: a refcount block
 * covers 2048 clusters.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ByteAllocatorTest {
  private static final int CS = 4096;
  private static final ImageGeometry GEOMETRY = new ImageGeometry(12, 64L << 20);
  private static final int ENTRIES = GEOMETRY.refcountBlockEntries();

  @TempDir Path dir;
  private DirectFile file;
  private RefcountTable refcounts;
  private RecordingStore store;
  private ByteAllocator allocator;

  /** First cluster the allocator may use; refcount block 0 goes there. */
  private final long first = GEOMETRY.firstFreeCluster();

  private void start(int capacity) {
    file = DirectFile.open(dir.resolve("image"), TargetCache.DIRECT, true);
    refcounts = new RefcountTable(GEOMETRY, file);
    store = new RecordingStore(CS, capacity);
    allocator = new ByteAllocator(GEOMETRY, refcounts, store, first);
  }

  @AfterEach
  void closeFile() {
    if (file != null) {
      file.close();
    }
  }

  /**
   * Records open/allocate/close and fails at once on what would break the cluster-fill cache: a
   * cluster opened out of file order or twice, bytes allocated past the cluster or in a cluster
   * not open, and above all a cluster opened while the older cluster that shares its slot is
   * still open (the cache would wait for it forever).
   */
  static final class RecordingStore implements ClusterStore {
    final int cs;
    final int capacity;
    final List<String> calls = new ArrayList<>();
    final Set<Long> open = new HashSet<>();
    final Map<Long, Integer> allocated = new HashMap<>();
    final Map<Long, Boolean> packed = new HashMap<>();
    long lastOpened = -1;

    RecordingStore(int cs, int capacity) {
      this.cs = cs;
      this.capacity = capacity;
    }

    @Override
    public void open(long hostCluster, boolean packed) {
      calls.add("open " + hostCluster + (packed ? " packed" : " whole"));
      if (hostCluster <= lastOpened) {
        throw new AssertionError("open(" + hostCluster + ") after open(" + lastOpened + "): not in file order");
      }
      for (long o : open) {
        if (o % capacity == hostCluster % capacity) {
          throw new AssertionError("open(" + hostCluster + ") while cluster " + o
              + ", in the same slot of a " + capacity + "-slot cache, is still open");
        }
      }
      lastOpened = hostCluster;
      open.add(hostCluster);
      allocated.put(hostCluster, 0);
      this.packed.put(hostCluster, packed);
    }

    @Override
    public void allocate(long hostCluster, int bytes) {
      calls.add("allocate " + hostCluster + " " + bytes);
      if (!open.contains(hostCluster)) {
        throw new AssertionError("allocate in cluster " + hostCluster + ", which is not open");
      }
      int total = allocated.get(hostCluster) + bytes;
      if (bytes < 1 || total > cs) {
        throw new AssertionError("allocate " + bytes + " in cluster " + hostCluster + " makes " + total);
      }
      allocated.put(hostCluster, total);
    }

    @Override
    public void close(long hostCluster) {
      calls.add("close " + hostCluster);
      if (!open.remove(hostCluster)) {
        throw new AssertionError("close of cluster " + hostCluster + ", which is not open");
      }
    }

    @Override
    public void fill(long hostOffset, ByteBuffer src) {
      throw new UnsupportedOperationException();
    }

    @Override
    public void flush() {
      throw new UnsupportedOperationException();
    }

    @Override
    public void read(long hostOffset, ByteBuffer dst) {
      throw new UnsupportedOperationException();
    }

    @Override
    public int capacityClusters() {
      return capacity;
    }

    @Override
    public void close() {}

    /** Calls recorded from index {@code from} on. */
    List<String> since(int from) {
      return calls.subList(from, calls.size());
    }
  }

  /** A refcount as it is on disk (16-bit big-endian entries in the block at {@code blockOffset}). */
  private int onDisk(long blockOffset, long hostCluster) {
    ByteBuffer b = DirectFile.allocateAligned(CS, file.alignment());
    assertEquals(CS, file.read(b, blockOffset), "refcount block at " + blockOffset + " is in the file");
    return Short.toUnsignedInt(b.getShort((int) (hostCluster % ENTRIES) * 2));
  }

  private long[] tableOnDisk(int entries) {
    refcounts.writeLiveAndTable();
    ByteBuffer t = DirectFile.allocateAligned(GEOMETRY.refcountTableClusters() * CS, file.alignment());
    file.read(t, GEOMETRY.refcountTableOffset());
    long[] out = new long[entries];
    for (int i = 0; i < entries; i++) {
      out[i] = t.getLong(i * 8);
    }
    return out;
  }

  // ---------------------------------------------------------------------------------- packing

  @Test
  void packsPayloadsBackToBack() {
    start(64);
    long o1 = allocator.allocateBytes(100);
    long c = o1 / CS;
    assertEquals(first + 1, c, "refcount block 0 takes the first free cluster, the cursor the next");
    assertEquals(0, o1 % CS);
    assertEquals(o1 + 100, allocator.allocateBytes(200));
    assertEquals(o1 + 300, allocator.allocateBytes(300));
    assertEquals(List.of("open " + c + " packed", "allocate " + c + " 100", "allocate " + c + " 200",
        "allocate " + c + " 300"), store.calls);
    assertEquals(3, refcounts.get(c), "one reference per payload");
    assertEquals(1, refcounts.get(first), "the refcount block counts itself");
    assertEquals(c, allocator.cursorCluster());
    assertEquals(600, allocator.cursorUsed());
  }

  @Test
  void fillingTheCursorExactlyClosesIt() {
    start(64);
    long c = allocator.allocateBytes(CS - 1000) / CS;
    int mark = store.calls.size();
    allocator.allocateBytes(1000);
    assertEquals(List.of("allocate " + c + " 1000", "close " + c), store.since(mark));
    assertEquals(-1, allocator.cursorCluster());
    assertEquals((c + 1) * CS, allocator.allocateBytes(10));
  }

  @Test
  void payloadCrossesIntoTheNextClusterWhenItIsTheNextFreeOne() {
    start(64);
    long c = allocator.allocateBytes(CS - 100) / CS;
    int mark = store.calls.size();
    assertEquals(c * CS + CS - 100, allocator.allocateBytes(300), "the payload starts in the cursor's tail");
    assertEquals(List.of("allocate " + c + " 100", "close " + c, "open " + (c + 1) + " packed",
        "allocate " + (c + 1) + " 200"), store.since(mark), "two extents in two clusters");
    assertEquals(2, refcounts.get(c), "both payloads touch cluster c");
    assertEquals(1, refcounts.get(c + 1), "the crossing payload counts in the next cluster too");
    assertEquals(c + 1, allocator.cursorCluster());
    assertEquals(200, allocator.cursorUsed());
    assertEquals((c + 1) * CS + 200, allocator.allocateBytes(10), "packing goes on after the crossing payload");
  }

  @Test
  void wholeClusterBesideTheCursorDoesNotCloseIt() {
    start(64);
    long c = allocator.allocateBytes(100) / CS;
    int mark = store.calls.size();
    assertEquals((c + 1) * CS, allocator.allocateCluster());
    assertEquals(List.of("open " + (c + 1) + " whole", "allocate " + (c + 1) + " " + CS, "close " + (c + 1)),
        store.since(mark), "the cursor's cluster stays open");
    assertEquals(c * CS + 100, allocator.allocateBytes(50), "the next small payload still lands in it");
    assertEquals(2, refcounts.get(c));
    assertEquals(1, refcounts.get(c + 1));
  }

  @Test
  void payloadThatWouldCrossIntoATakenClusterMovesToAFreshCluster() {
    start(64);
    long c = allocator.allocateBytes(CS - 100) / CS;
    assertEquals((c + 1) * CS, allocator.allocateCluster());
    int mark = store.calls.size();
    long o = allocator.allocateBytes(300);
    assertEquals((c + 2) * CS, o, "a fresh cluster; the 100-byte tail of cluster c is wasted, less than the payload");
    assertEquals(List.of("close " + c, "open " + (c + 2) + " packed", "allocate " + (c + 2) + " 300"),
        store.since(mark));
    assertEquals(1, refcounts.get(c), "the payload does not count in the cluster it left");
    assertEquals(1, refcounts.get(c + 2));
    assertEquals(CS - 100, store.allocated.get(c));
  }

  @Test
  void payloadDoesNotCrossIntoAClusterThatMustHoldANewRefcountBlock() {
    start(64);
    while (allocator.nextFree() < ENTRIES - 2) {
      allocator.allocateCluster();
    }
    allocator.allocateBytes(CS - 100);
    allocator.allocateBytes(300); // crosses into the last cluster of block 0's region
    assertEquals(ENTRIES - 1, allocator.cursorCluster());
    long o = allocator.allocateBytes(CS - 100);
    assertEquals((ENTRIES + 1L) * CS, o, "block 1 takes cluster " + ENTRIES + ", the payload the next one");
    assertTrue(refcounts.hasBlock(1));
    assertEquals(1, refcounts.get(ENTRIES), "the new block counts itself");
    assertEquals(1, refcounts.get(ENTRIES + 1));
    assertFalse(store.calls.stream().anyMatch(c -> c.startsWith("open " + ENTRIES + " ")),
        "the cache never sees the block's cluster");
  }

  // ----------------------------------------------------------------- cursor and cache capacity

  @ParameterizedTest
  @ValueSource(ints = {4, 8, 13})
  void closesTheCursorWhenAllocationRunsCapacityMinusOneClustersAhead(int capacity) {
    start(capacity);
    long c = allocator.allocateBytes(100) / CS;
    for (int k = 1; k < capacity - 1; k++) {
      assertEquals((c + k) * CS, allocator.allocateCluster());
      assertFalse(store.calls.contains("close " + c), "closed after only " + k + " clusters ahead");
    }
    int mark = store.calls.size();
    long h = c + capacity - 1;
    assertEquals(h * CS, allocator.allocateCluster());
    assertEquals(List.of("close " + c, "open " + h + " whole", "allocate " + h + " " + CS, "close " + h),
        store.since(mark), "closed before the cluster " + (capacity - 1) + " ahead is opened");
    assertEquals(-1, allocator.cursorCluster());
    assertEquals((h + 1) * CS, allocator.allocateBytes(50), "the next payload opens a fresh cursor");
  }

  /** The refcount block placed on the way is why the cursor closes one cluster early. */
  @Test
  void cursorStaysOutOfTheWayWhenARefcountBlockIsPlacedJustBeforeTheCapacityLimit() {
    int capacity = 6;
    start(capacity);
    long c = ENTRIES - capacity + 2; // cluster c + capacity - 2 starts a new refcount region
    while (allocator.nextFree() < c) {
      allocator.allocateCluster();
    }
    assertEquals(c * CS, allocator.allocateBytes(100));
    for (int k = 0; k < 2 * capacity; k++) {
      allocator.allocateCluster(); // the recording store fails if a cluster in c's slot is opened first
    }
    assertEquals(1, refcounts.get(ENTRIES), "block 1 placed at the start of its region");
    assertFalse(store.calls.contains("open " + ENTRIES + " whole"));
    assertTrue(store.calls.indexOf("close " + c) < store.calls.indexOf("open " + (c + capacity) + " whole"));
  }

  // -------------------------------------------------------------------------------- refcounts

  @Test
  void refcountBlocksArePlacedAsAllocationEntersANewRegionAndCountThemselves() {
    start(4 * ENTRIES); // the cursor stays open throughout
    long cursor = allocator.allocateBytes(100) / CS;
    List<Long> taken = new ArrayList<>();
    while (allocator.nextFree() < 2L * ENTRIES + 10) {
      taken.add(allocator.allocateCluster() / CS);
    }
    List<Long> expected = new ArrayList<>();
    for (long h = cursor + 1; h < allocator.nextFree(); h++) {
      if (h != ENTRIES && h != 2L * ENTRIES) {
        expected.add(h);
      }
    }
    assertEquals(expected, taken, "data skips the clusters the blocks take");
    assertEquals(1, refcounts.get(first), "block 0 counts itself");
    assertEquals(1, refcounts.get(ENTRIES), "block 1 counts itself");
    assertEquals(1, refcounts.get(2L * ENTRIES), "block 2 counts itself");
    assertArrayEquals(new long[] {first * CS, (long) ENTRIES * CS, 2L * ENTRIES * CS, 0}, tableOnDisk(4),
        "blocks at the first free cluster and at the start of each later region");

    allocator.closeCursor();
    assertEquals(-1, refcounts.get(first + 1), "blocks 0 and 1 are final once the cursor left their regions");
    for (long h = 0; h < ENTRIES; h++) {
      assertEquals(h < first ? 0 : 1, onDisk(first * CS, h), "cluster " + h + " in block 0 on disk");
    }
    for (long h = ENTRIES; h < 2L * ENTRIES; h++) {
      assertEquals(1, onDisk((long) ENTRIES * CS, h), "cluster " + h + " in block 1 on disk");
    }
  }

  /**
   * The last cluster of a refcount region, taken while no cursor is open (a whole cluster, or the
   * first payload of a fresh cursor), is counted in its block like any other.
   */
  @ParameterizedTest(name = "by a payload: {0}")
  @ValueSource(booleans = {false, true})
  void lastClusterOfARefcountRegionIsCountedWhenNoCursorIsOpen(boolean payload) {
    start(64);
    while (allocator.nextFree() < ENTRIES - 1) {
      allocator.allocateCluster();
    }
    assertEquals(-1, allocator.cursorCluster());
    long o = payload ? allocator.allocateBytes(100) : allocator.allocateCluster();
    assertEquals((ENTRIES - 1L) * CS, o);
    allocator.allocateCluster();
    allocator.closeCursor();
    refcounts.retireBelow(Long.MAX_VALUE);
    assertEquals(1, onDisk(first * CS, ENTRIES - 1), "refcount of cluster " + (ENTRIES - 1) + " on disk");
  }

  @Test
  void refcountBlockStaysLiveWhileTheCursorIsInItsRegion() {
    start(4 * ENTRIES);
    long c = allocator.allocateBytes(100) / CS;
    while (allocator.nextFree() < ENTRIES + 10) {
      allocator.allocateCluster();
    }
    assertEquals(c * CS + 100, allocator.allocateBytes(10), "the cursor is still open");
    assertEquals(2, refcounts.get(c), "its block is still live");
    allocator.closeCursor();
    assertEquals(-1, refcounts.get(c), "final once the cursor left");
    assertEquals(2, onDisk(first * CS, c));
  }

  @Test
  void allocateBytesRejectsZeroAndClusterSizedLengths() {
    start(64);
    for (int bad : new int[] {-1, 0, CS, CS + 1}) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> allocator.allocateBytes(bad));
      assertTrue(e.getMessage().contains("length"), e.getMessage());
    }
    assertEquals(List.of(), store.calls, "nothing allocated for a refused length");
    long c = allocator.allocateBytes(CS - 1) / CS;
    assertEquals(c * CS + CS - 1, allocator.allocateBytes(1), "1 and cluster size - 1 are accepted");
  }

  // --------------------------------------------------------------------- randomized, with model

  /**
   * Random payloads and whole clusters across three refcount regions: the recording store checks
   * file order and slots; here every extent lies where it was allocated, none overlap, and every
   * refcount on disk equals the number of payloads (or whole clusters, or blocks) in its cluster.
   */
  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3, 4, 5, 6})
  void randomAllocationsCountEveryExtentOnce(int seed) {
    Random r = new Random(seed);
    int capacity = 4 + r.nextInt(13);
    start(capacity);
    Map<Long, Integer> expected = new HashMap<>();
    long lastEnd = 0;
    List<long[]> extents = new ArrayList<>();
    while (allocator.nextFree() < 3L * ENTRIES - 5) {
      int op = r.nextInt(100);
      if (op < 80) {
        int len = r.nextInt(10) == 0 ? CS - 1 - r.nextInt(100) : 1 + r.nextInt(CS / 2);
        long o = allocator.allocateBytes(len);
        extents.add(new long[] {o, len});
        for (long h = o / CS; h <= (o + len - 1) / CS; h++) {
          expected.merge(h, 1, Integer::sum);
          assertTrue(store.packed.get(h), "payload in a packed cluster " + h);
        }
      } else if (op < 98) {
        long o = allocator.allocateCluster();
        extents.add(new long[] {o, CS});
        expected.merge(o / CS, 1, Integer::sum);
        assertFalse(store.packed.get(o / CS));
      } else {
        allocator.closeCursor();
      }
    }
    allocator.closeCursor();
    refcounts.retireBelow(Long.MAX_VALUE);
    extents.sort((a, b) -> Long.compare(a[0], b[0]));
    for (long[] e : extents) {
      assertTrue(e[0] >= lastEnd, String.format("extent at 0x%x overlaps the one before", e[0]));
      lastEnd = e[0] + e[1];
    }
    long[] table = tableOnDisk(4);
    for (int b = 0; b < 3; b++) {
      assertTrue(table[b] != 0, "block " + b + " placed");
      expected.merge(table[b] / CS, 1, Integer::sum);
    }
    assertEquals(0, table[3]);
    for (long h = first; h < allocator.nextFree(); h++) {
      int want = expected.getOrDefault(h, 0);
      assertEquals(want, onDisk(table[(int) (h / ENTRIES)], h), "refcount of cluster " + h + " (seed " + seed + ")");
      if (store.allocated.containsKey(h)) {
        assertTrue(want > 0, "cluster " + h + " opened but unused");
      }
    }
    assertTrue(store.open.isEmpty(), "every cluster closed: " + store.open);
  }

  /**
   * The allocator driving a real, small cache (4 slots), with payloads filled from other threads:
   * allocation never waits on a cluster only it could close, and every payload reads back.
   */
  @Test
  void keepsASmallCacheFlowingWithFillsFromOtherThreads() throws Exception {
    file = DirectFile.open(dir.resolve("image"), TargetCache.DIRECT, true);
    refcounts = new RefcountTable(GEOMETRY, file);
    ExecutorService fillers = Executors.newFixedThreadPool(3);
    try (ClusterFillCache cache = new ClusterFillCache(file, CS, 4, 4 << 20, 2)) {
      allocator = new ByteAllocator(GEOMETRY, refcounts, cache, first);
      Random r = new Random(9);
      List<long[]> extents = new ArrayList<>();
      Map<Long, byte[]> data = new HashMap<>();
      List<Future<?>> done = new ArrayList<>();
      while (allocator.nextFree() < ENTRIES + 200) {
        boolean whole = r.nextInt(6) == 0;
        int len = whole ? CS : 1 + r.nextInt(CS - 1);
        long o = whole ? allocator.allocateCluster() : allocator.allocateBytes(len);
        byte[] b = new byte[len];
        r.nextBytes(b);
        extents.add(new long[] {o, len});
        data.put(o, b);
        done.add(fillers.submit(() -> cache.fill(o, ByteBuffer.wrap(b))));
      }
      allocator.closeCursor();
      for (Future<?> f : done) {
        f.get(20, TimeUnit.SECONDS);
      }
      cache.flush();
      refcounts.retireBelow(Long.MAX_VALUE);
      for (long[] e : extents) {
        ByteBuffer got = ByteBuffer.allocate((int) e[1]);
        AlignedIo.read(file, e[0], got);
        assertArrayEquals(data.get(e[0]), got.array(), String.format("payload at 0x%x", e[0]));
      }
      assertEquals(1, onDisk(first * CS, first), "block 0 in the file beside the data");
      assertEquals(1, onDisk((long) ENTRIES * CS, ENTRIES), "block 1 in the file beside the data");
    } finally {
      fillers.shutdownNow();
    }
  }
}
