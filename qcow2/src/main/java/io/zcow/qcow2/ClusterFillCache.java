package io.zcow.qcow2;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The cluster-fill cache: each host cluster stays in memory while its compressed payloads land in
 * it, and is written once, whole and aligned, when every byte allocated in it has arrived.
 *
 * <p>Memory is one aligned slab of {@code capacity} cluster slots. Host cluster {@code h} lives in
 * slot {@code h % capacity}: allocation runs in file order, so clusters next to each other in the
 * file sit next to each other in the slab, and a run of ready clusters goes out as one write
 * straight from the slab (coalesced up to {@code coalesceBytes}, 4 MiB by default). Opening a
 * cluster whose slot is still taken waits until the older cluster there is written (backpressure).
 *
 * <p>A slot is EMPTY, OPEN (allocated bytes arriving), READY (closed and every allocated byte
 * filled), QUEUED for a writer thread, or WRITING; after the write it is EMPTY again. Fills copy
 * without the lock (each allocated extent is filled once, by one thread) and count under it, so
 * they may complete in any order from any thread.
 *
 * <p>Thread safety: {@link #open}, {@link #allocate} and {@link #close} come from the allocator
 * (one thread at a time, in file order); {@link #fill}, {@link #read} from any thread. A failed
 * write is kept and thrown by every later call.
 */
final class ClusterFillCache implements ClusterStore {
  private static final byte EMPTY = 0;
  private static final byte OPEN = 1;
  private static final byte READY = 2;
  private static final byte QUEUED = 3;
  private static final byte WRITING = 4;

  private final DirectFile file;
  private final int cs;
  private final int capacity;
  private final int coalesce;
  /** The cache memory; dropped on close so a finished image frees it however long it is kept. */
  private ByteBuffer slab;

  private final ReentrantLock lock = new ReentrantLock();
  /** Signalled when a slot empties, bytes are filled, or a write ends. */
  private final Condition changed = lock.newCondition();
  /** Signalled when a run is queued for the writer threads. */
  private final Condition work = lock.newCondition();

  // Guarded by lock.
  private final long[] cluster;
  private final int[] allocated;
  private final int[] filled;
  /** Bytes fills have claimed (filled plus copies in progress); never more than allocated. */
  private final int[] claimed;
  private final boolean[] closed;
  private final byte[] state;
  private final ArrayDeque<long[]> queue = new ArrayDeque<>();
  private long unfilled;
  private int inFlight;
  private long waitingFor = -1;
  private boolean stopping;
  private RuntimeException failure;

  private final Thread[] writers;

  /**
   * @param capacity cluster slots (memory is {@code capacity * cluster size}), at least 4
   * @param coalesceBytes largest single write; runs of ready clusters are written once this long
   * @param writerThreads writes in flight at once
   */
  ClusterFillCache(DirectFile file, int clusterSize, int capacity, int coalesceBytes, int writerThreads) {
    if (capacity < 4) {
      throw new IllegalArgumentException("capacity must be at least 4 clusters: " + capacity);
    }
    if ((long) capacity * clusterSize > Integer.MAX_VALUE - 2L * file.alignment()) {
      throw new IllegalArgumentException("capacity * clusterSize must stay below 2 GiB: " + capacity + " * " + clusterSize);
    }
    if (clusterSize % file.alignment() != 0) {
      throw new IllegalArgumentException(
          "clusterSize " + clusterSize + " must be a multiple of the file's alignment " + file.alignment());
    }
    if (writerThreads < 1) {
      throw new IllegalArgumentException("writerThreads must be at least 1: " + writerThreads);
    }
    this.file = file;
    this.cs = clusterSize;
    this.capacity = capacity;
    this.coalesce = Math.max(1, Math.min(coalesceBytes / clusterSize, capacity / 4));
    this.slab = DirectFile.allocateAligned(capacity * clusterSize, file.alignment());
    this.cluster = new long[capacity];
    java.util.Arrays.fill(cluster, -1);
    this.allocated = new int[capacity];
    this.filled = new int[capacity];
    this.claimed = new int[capacity];
    this.closed = new boolean[capacity];
    this.state = new byte[capacity];
    this.writers = new Thread[writerThreads];
    for (int i = 0; i < writerThreads; i++) {
      writers[i] = new Thread(this::writeLoop, "zcow-cache-writer-" + i);
      writers[i].setDaemon(true);
      writers[i].start();
    }
  }

  @Override
  public int capacityClusters() {
    return capacity;
  }

  private int slot(long hostCluster) {
    return (int) (hostCluster % capacity);
  }

  @Override
  public void open(long hostCluster, boolean packed) {
    int s = slot(hostCluster);
    lock.lock();
    try {
      checkFailure();
      while (cluster[s] != -1) {
        checkFailure();
        waitingFor = cluster[s];
        if (state[s] == READY) {
          queueRunFrom(s);
        }
        awaitUninterruptibly(changed);
      }
      waitingFor = -1;
      checkFailure(); // the write that freed the slot may have failed: nothing more goes in
      cluster[s] = hostCluster;
      allocated[s] = 0;
      filled[s] = 0;
      claimed[s] = 0;
      closed[s] = false;
      state[s] = OPEN;
    } finally {
      lock.unlock();
    }
    if (packed) {
      // Unused bytes of a packed cluster reach the file: make them zeros, not an older cluster's data.
      for (int done = 0; done < cs; done += ZEROS.capacity()) {
        slab.put(s * cs + done, ZEROS, 0, Math.min(cs - done, ZEROS.capacity()));
      }
    }
  }

  private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(1 << 16);

  @Override
  public void allocate(long hostCluster, int bytes) {
    lock.lock();
    try {
      int s = resident(hostCluster);
      if (allocated[s] + bytes > cs || closed[s]) {
        throw new IllegalStateException("host cluster " + hostCluster + ": cannot allocate " + bytes + " more bytes");
      }
      allocated[s] += bytes;
      unfilled += bytes;
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void close(long hostCluster) {
    lock.lock();
    try {
      int s = resident(hostCluster);
      closed[s] = true;
      maybeReady(s);
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void fill(long hostOffset, ByteBuffer src) {
    long off = hostOffset;
    int pos = src.position();
    int remaining = src.remaining();
    while (remaining > 0) {
      long h = off / cs;
      int within = (int) (off % cs);
      int k = Math.min(remaining, cs - within);
      int s = slot(h);
      lock.lock();
      try {
        // Claim the bytes before copying, so a refused fill never touches the slab.
        checkFailure();
        resident(h);
        if (claimed[s] + k > allocated[s]) {
          throw new IllegalStateException(String.format(
              "host cluster %d: fill of %d bytes at 0x%x exceeds its allocation", h, k, off));
        }
        claimed[s] += k;
      } finally {
        lock.unlock();
      }
      slab.put(s * cs + within, src, pos, k);
      lock.lock();
      try {
        filled[s] += k;
        unfilled -= k;
        maybeReady(s);
        if (unfilled == 0) {
          changed.signalAll();
        }
      } finally {
        lock.unlock();
      }
      off += k;
      pos += k;
      remaining -= k;
    }
  }

  private int resident(long hostCluster) {
    int s = slot(hostCluster);
    if (cluster[s] != hostCluster || state[s] == EMPTY) {
      throw new IllegalStateException("host cluster " + hostCluster + " is not open in the cache");
    }
    return s;
  }

  private void maybeReady(int s) {
    if (state[s] == OPEN && closed[s] && filled[s] == allocated[s]) {
      state[s] = READY;
      if (cluster[s] == waitingFor) {
        queueRunFrom(s);
      } else {
        queueRunIfLong(s);
      }
    }
  }

  /** Queues the run of ready clusters around slot s once it is long enough to write. */
  private void queueRunIfLong(int s) {
    int left = s;
    while (left > 0 && s - left + 1 < coalesce && readyNext(left - 1, left)) {
      left--;
    }
    int right = s;
    while (right + 1 < capacity && right - left + 1 < coalesce && readyNext(right, right + 1)) {
      right++;
    }
    if (right - left + 1 >= coalesce) {
      queueRun(left, right);
    }
  }

  /** Queues the run of ready clusters that starts at slot s, however short. */
  private void queueRunFrom(int s) {
    int right = s;
    while (right + 1 < capacity && right - s + 1 < coalesce && readyNext(right, right + 1)) {
      right++;
    }
    queueRun(s, right);
  }

  /** Slots a and b (= a + 1) are both ready and hold consecutive clusters of the file. */
  private boolean readyNext(int a, int b) {
    return state[a] == READY && state[b] == READY && cluster[b] == cluster[a] + 1;
  }

  private void queueRun(int first, int last) {
    for (int s = first; s <= last; s++) {
      state[s] = QUEUED;
    }
    queue.add(new long[] {first, last - first + 1});
    inFlight++;
    work.signal();
  }

  private void writeLoop() {
    while (true) {
      long[] run;
      lock.lock();
      try {
        while (queue.isEmpty() && !stopping) {
          awaitUninterruptibly(work);
        }
        if (queue.isEmpty()) {
          return;
        }
        run = queue.poll();
        for (int s = (int) run[0]; s < run[0] + run[1]; s++) {
          state[s] = WRITING;
        }
      } finally {
        lock.unlock();
      }
      int first = (int) run[0];
      int count = (int) run[1];
      RuntimeException error = null;
      try {
        file.write(slab.slice(first * cs, count * cs), cluster[first] * cs);
      } catch (RuntimeException e) {
        error = e;
      } catch (Error e) {
        // A dead writer thread would leave its run in flight forever and every producer and
        // flush waiting on it: the error becomes the cache's failure, thrown by the next call.
        error = new io.zcow.ZcowException(String.format("writing host clusters %d..%d of %s failed: %s",
            cluster[first], cluster[first] + count - 1, file.path(), e), e);
      }
      lock.lock();
      try {
        if (error != null && failure == null) {
          failure = error;
        }
        for (int s = first; s < first + count; s++) {
          cluster[s] = -1;
          state[s] = EMPTY;
        }
        inFlight--;
        changed.signalAll();
      } finally {
        lock.unlock();
      }
    }
  }

  @Override
  public void flush() {
    lock.lock();
    try {
      while (unfilled > 0 || inFlight > 0) {
        checkFailure();
        awaitUninterruptibly(changed);
      }
      for (int s = 0; s < capacity; s++) {
        if (state[s] == READY) {
          queueRunFrom(s);
        }
      }
      while (inFlight > 0) {
        checkFailure();
        awaitUninterruptibly(changed);
      }
      checkFailure();
      // The cluster still being filled goes out padded to the alignment, and stays.
      for (int s = 0; s < capacity; s++) {
        if (state[s] == OPEN && allocated[s] > 0) {
          int length = roundUp(allocated[s], file.alignment());
          file.write(slab.slice(s * cs, length), cluster[s] * cs);
        }
      }
    } finally {
      lock.unlock();
    }
    file.force();
  }

  @Override
  public void read(long hostOffset, ByteBuffer dst) {
    long off = hostOffset;
    ByteBuffer out = dst.duplicate();
    while (out.hasRemaining()) {
      long h = off / cs;
      int within = (int) (off % cs);
      int k = Math.min(out.remaining(), cs - within);
      int s = slot(h);
      boolean cached;
      lock.lock();
      try {
        cached = cluster[s] == h && state[s] != EMPTY;
        if (cached) {
          out.put(out.position(), slab, s * cs + within, k);
        }
      } finally {
        lock.unlock();
      }
      if (!cached) {
        AlignedIo.read(file, off, out.slice(out.position(), k));
      }
      out.position(out.position() + k);
      off += k;
    }
  }

  /**
   * Loads a cluster a checkpoint left partly filled: its first {@code used} bytes come from the
   * file, and it is open again for payloads after them.
   */
  void reload(long hostCluster, int used) {
    open(hostCluster, true);
    int s = slot(hostCluster);
    AlignedIo.read(file, hostCluster * cs, slab.slice(s * cs, used));
    lock.lock();
    try {
      allocated[s] = used;
      filled[s] = used;
      claimed[s] = used;
    } finally {
      lock.unlock();
    }
  }

  private void checkFailure() {
    if (failure != null) {
      throw failure;
    }
  }

  private static int roundUp(int n, int alignment) {
    return (n + alignment - 1) / alignment * alignment;
  }

  private static void awaitUninterruptibly(Condition c) {
    c.awaitUninterruptibly();
  }

  @Override
  public void close() {
    lock.lock();
    try {
      stopping = true;
      work.signalAll();
    } finally {
      lock.unlock();
    }
    for (Thread t : writers) {
      try {
        t.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
    lock.lock();
    try {
      slab = null;
      if (failure == null) {
        failure = new IllegalStateException("the cluster-fill cache is closed");
      }
    } finally {
      lock.unlock();
    }
  }
}
