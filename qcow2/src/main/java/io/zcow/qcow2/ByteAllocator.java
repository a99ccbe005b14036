package io.zcow.qcow2;

/**
 * Hands out host space in file order: whole clusters (raw data, L2 tables, refcount blocks) and
 * byte extents for compressed payloads, packed back to back in the "cursor" cluster.
 *
 * <p>The rules that keep the image small (DESIGN.md, "The cluster-fill cache"):
 * <ul>
 *   <li>A payload crosses into the next host cluster when that cluster is the next one in the file
 *       and still free; it is then two extents in two clusters.
 *   <li>Whole-cluster allocations do not close the cursor's cluster: the cursor keeps filling it,
 *       and moves to a fresh cluster only when a payload must cross into a cluster already taken,
 *       wasting less than one payload.
 *   <li>The cursor's cluster is closed when allocation runs a whole store capacity ahead of it (the
 *       cache could not otherwise take the next cluster), and before its refcount would overflow.
 * </ul>
 * Every allocation is counted in the {@link RefcountTable}, and a refcount block is placed as
 * allocation enters the file region it covers.
 *
 * <p>Not thread safe: the image writer's allocation lock guards it.
 */
final class ByteAllocator {
  private final int cs;
  private final RefcountTable refcounts;
  private final ClusterStore store;

  private long nextFree;
  private long cursorCluster = -1;
  private int cursorUsed;

  ByteAllocator(ImageGeometry geometry, RefcountTable refcounts, ClusterStore store, long nextFree) {
    this.cs = geometry.clusterSize();
    this.refcounts = refcounts;
    this.store = store;
    this.nextFree = nextFree;
  }

  /** Resumes with the cursor where a checkpoint left it; the store must already hold its cluster. */
  void restoreCursor(long cluster, int used) {
    this.cursorCluster = cluster;
    this.cursorUsed = used;
  }

  /** Continues allocation at {@code cluster} (after initial metadata, or at a checkpoint). */
  void skipTo(long cluster) {
    if (cluster < nextFree) {
      throw new IllegalArgumentException("cannot move allocation back from " + nextFree + " to " + cluster);
    }
    nextFree = cluster;
  }

  long nextFree() {
    return nextFree;
  }

  long cursorCluster() {
    return cursorCluster;
  }

  int cursorUsed() {
    return cursorUsed;
  }

  /** Clusters below this can no longer change (neither new allocations nor new payloads). */
  long front() {
    return cursorCluster >= 0 ? cursorCluster : nextFree;
  }

  /** A whole cluster, opened and closed in the store; returns its byte offset. */
  long allocateCluster() {
    long h = take();
    refcounts.increment(h);
    store.open(h, false);
    store.allocate(h, cs);
    store.close(h);
    return h * cs;
  }

  /** {@code length} bytes (1 to cluster_size - 1) for a compressed payload; returns the offset. */
  long allocateBytes(int length) {
    if (length < 1 || length >= cs) {
      throw new IllegalArgumentException("length must be in 1.." + (cs - 1) + ": " + length);
    }
    if (cursorCluster >= 0 && refcounts.get(cursorCluster) >= RefcountTable.MAX_REFCOUNT - 1) {
      closeCursor();
    }
    if (cursorCluster < 0) {
      openCursor();
    }
    long start = cursorCluster * cs + cursorUsed;
    int avail = cs - cursorUsed;
    if (length <= avail) {
      store.allocate(cursorCluster, length);
      refcounts.increment(cursorCluster);
      cursorUsed += length;
      if (cursorUsed == cs) {
        closeCursor();
      }
      return start;
    }
    long next = cursorCluster + 1;
    if (nextFree == next && refcounts.hasBlock(refcounts.blockIndex(next))) {
      // Cross into the next cluster of the file: two extents, each cluster counts the payload.
      store.allocate(cursorCluster, avail);
      refcounts.increment(cursorCluster);
      store.close(cursorCluster);
      cursorCluster = take();
      store.open(cursorCluster, true);
      store.allocate(cursorCluster, length - avail);
      refcounts.increment(cursorCluster);
      cursorUsed = length - avail;
      return start;
    }
    // The next cluster is taken: waste the tail, start afresh.
    closeCursor();
    return allocateBytes(length);
  }

  /** Closes the cursor's cluster (end of job, or forced); the next payload opens a fresh one. */
  void closeCursor() {
    if (cursorCluster >= 0) {
      store.close(cursorCluster);
      cursorCluster = -1;
      cursorUsed = 0;
      refcounts.retireBelow(front());
    }
  }

  private void openCursor() {
    cursorCluster = take();
    cursorUsed = 0;
    store.open(cursorCluster, true);
  }

  /** Takes the next host cluster, placing a refcount block first where one is needed. */
  private long take() {
    if (cursorCluster >= 0 && nextFree - cursorCluster >= store.capacityClusters() - 1) {
      closeCursor();
    }
    long block = refcounts.blockIndex(nextFree);
    if (!refcounts.hasBlock(block)) {
      // The block covers itself: it is the first cluster of its own region.
      long at = nextFree++;
      refcounts.placeBlock(block, at);
      refcounts.increment(at);
    }
    long h = nextFree++;
    if (h >= ImageGeometry.MAX_HOST_OFFSET / cs) {
      throw new IllegalStateException("host offset would exceed 2^56");
    }
    // h is about to be counted: its block must stay even when the cursor is not set yet.
    refcounts.retireBelow(Math.min(front(), h));
    return h;
  }
}
