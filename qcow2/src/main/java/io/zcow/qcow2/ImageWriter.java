package io.zcow.qcow2;

import io.zcow.BadInputException;
import io.zcow.CorruptException;
import io.zcow.TargetIoException;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.BitSet;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes a compressed qcow2 v3 image from guest clusters that arrive from several threads, in any
 * order, possibly more than once.
 *
 * <p>Each accepted cluster gets host space from the {@link ByteAllocator} under one lock (offsets
 * must be handed out in file order), then its payload is copied into the {@link ClusterFillCache}
 * outside the lock, in parallel. The first arrival of a guest cluster wins; later ones are counted
 * and dropped. An L2 table is written once every range it covers is complete; refcounts are
 * counted as space is allocated. Work in progress lives in {@code TARGET.part}; {@link #finish()}
 * writes the metadata and renames it to TARGET.
 *
 * <p>Thread safety: every public method may be called from any thread. {@link #put} may block
 * while the cache is full. After a failure (an exception other than a refused payload) the writer
 * must be closed; the {@code .part} file and the last checkpoint stay usable.
 */
public final class ImageWriter implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(ImageWriter.class);
  private static final int COALESCE_BYTES = 4 << 20;
  private static final int CACHE_WRITER_THREADS = 2;

  private final Path target;
  private final Path part;
  private final ImageOptions options;
  private final ImageGeometry geometry;
  private final int cs;
  private final DirectFile file;
  private final ClusterStore store;
  private final RefcountTable refcounts;
  private final ByteAllocator allocator;
  private final RangeTracker ranges;
  private final ByteBuffer l1;
  private final ThreadLocal<PayloadDecoder> decoders;
  private final StateFiles states;
  private final ImageDigests digests;

  /** Allocation, mapping and counters; held only briefly (never while copying payloads). */
  private final ReentrantLock lock = new ReentrantLock();
  // Guarded by lock.
  private long sequence;
  /** The sequence of the last committed checkpoint (-1 before any): its state file is kept. */
  private long committedSequence = -1;
  private long guestClustersDone;
  private long zeroClusters;
  private long rawClusters;
  private long compressedClusters;
  private long duplicates;
  private long payloadBytes;
  private boolean finished;
  /**
   * The first target I/O error a checkpoint or the finish met: later ones are refused without
   * touching the file (never an fsync after a failed one; the job resumes from its last checkpoint).
   */
  private TargetIoException targetFailed;

  private ImageWriter(Path target, ImageOptions options, DirectFile file, boolean resumed) {
    this.target = target;
    this.part = partPath(target);
    this.options = options;
    this.geometry = options.geometry();
    this.cs = geometry.clusterSize();
    this.file = file;
    if (cs < file.alignment()) {
      file.close();
      throw new BadInputException(
          "cluster size " + cs + " is smaller than the target file system's block size " + file.alignment());
    }
    this.store = options.writeCache()
        ? new ClusterFillCache(file, cs, (int) (options.cacheBytes() / cs), COALESCE_BYTES, CACHE_WRITER_THREADS)
        : new ImmediateStore(file);
    this.refcounts = new RefcountTable(geometry, file);
    this.allocator = new ByteAllocator(geometry, refcounts, store, geometry.firstFreeCluster());
    this.ranges = new RangeTracker(geometry, options.rangeClusters());
    this.l1 = DirectFile.allocateAligned(geometry.l1Clusters() * cs, file.alignment()).order(ByteOrder.BIG_ENDIAN);
    this.decoders = ThreadLocal.withInitial(() -> new PayloadDecoder(cs));
    this.states = new StateFiles(part);
    this.digests = ImageDigests.open(target, options, resumed);
  }

  /** Where work in progress lives: {@code TARGET.part}, renamed to TARGET by {@link #finish()}. */
  public static Path partPath(Path target) {
    return target.resolveSibling(target.getFileName() + ".part");
  }

  /**
   * Creates {@code TARGET.part} (which must not exist) and starts a new image. The writer holds
   * the file's fence lock ({@link DirectFile#lockFence}) until it is closed.
   */
  public static ImageWriter create(Path target, ImageOptions options) {
    return create(target, options, false);
  }

  /**
   * As {@link #create(Path, ImageOptions)}; with {@code exactPath} the file opened must be at
   * exactly that path, no symlink in any component ({@link DirectFile#openExact}): for a target
   * checked to lie inside a root.
   */
  public static ImageWriter create(Path target, ImageOptions options, boolean exactPath) {
    Path part = partPath(target);
    DirectFile file;
    try {
      file = exactPath ? DirectFile.openExact(part, options.targetCache(), true)
          : DirectFile.open(part, options.targetCache(), true);
    } catch (UncheckedIOException e) {
      if (e.getCause() instanceof java.nio.file.FileAlreadyExistsException) {
        throw new BadInputException(part + " already exists (an unfinished job?): remove it or resume");
      }
      throw e;
    }
    ImageWriter w;
    try {
      file.lockFence();
      w = new ImageWriter(target, options, file, false);
    } catch (RuntimeException | Error e) { // an OutOfMemoryError for the cache too: no .part left behind
      file.close();
      StateFiles.deleteQuietly(part);
      throw e;
    }
    w.placeInitialRefcounts();
    return w;
  }

  /**
   * Reopens {@code TARGET.part} at {@code checkpoint} (which must come from an image of the same
   * options) and continues: clusters accepted after the checkpoint must be sent again.
   *
   * @throws io.zcow.TargetLockedException while another writer (in any process) holds the file:
   *     a new leader retries until the old one lets go
   */
  public static ImageWriter resume(Path target, ImageOptions options, Checkpoint checkpoint) {
    return resume(target, options, checkpoint, false);
  }

  /** As {@link #resume(Path, ImageOptions, Checkpoint)}; {@code exactPath} as for {@link #create(Path, ImageOptions, boolean)}. */
  public static ImageWriter resume(Path target, ImageOptions options, Checkpoint checkpoint, boolean exactPath) {
    Path part = partPath(target);
    if (!Files.isRegularFile(part)) {
      throw new BadInputException("cannot resume: " + part + " does not exist");
    }
    DirectFile.checkNotFencedHere(part);
    DirectFile file = exactPath ? DirectFile.openExact(part, options.targetCache(), false)
        : DirectFile.open(part, options.targetCache(), false);
    ImageWriter w;
    try {
      file.lockFence();
      w = new ImageWriter(target, options, file, true);
      w.restore(checkpoint);
    } catch (RuntimeException | Error e) {
      file.close();
      throw e;
    }
    return w;
  }

  /** Header, L1 table and refcount table are counted, with the blocks that count them. */
  private void placeInitialRefcounts() {
    long next = geometry.firstFreeCluster();
    long covered = 0; // refcount blocks are placed for every cluster below this
    while (covered < next) {
      long block = refcounts.blockIndex(covered);
      if (!refcounts.hasBlock(block)) {
        refcounts.placeBlock(block, next++);
      }
      covered = (block + 1) * geometry.refcountBlockEntries();
    }
    for (long h = 0; h < next; h++) {
      refcounts.increment(h);
    }
    allocator.skipTo(next);
  }

  private void restore(Checkpoint cp) {
    cp.checkFits(geometry);
    states.load(cp.sequence(), ranges);
    allocator.skipTo(cp.nextFreeCluster());
    refcounts.restore(cp.nextFreeCluster(), cp.cursorCluster() >= 0 ? cp.cursorCluster() : cp.nextFreeCluster(),
        cp.cursorCluster(), cp.cursorRefcount());
    if (file.read(l1.duplicate().clear(), geometry.l1Offset()) < l1.capacity()) {
      throw new CorruptException(String.format("L1 table at 0x%x is truncated", geometry.l1Offset()));
    }
    // L2 tables placed after the checkpoint are not part of it.
    long limit = cp.nextFreeCluster() * cs;
    for (int i = 0; i < geometry.l1Size(); i++) {
      if ((l1.getLong(i * 8) & L2Entry.OFFSET_MASK) >= limit) {
        l1.putLong(i * 8, 0);
      }
    }
    if (cp.cursorCluster() >= 0) {
      if (store instanceof ClusterFillCache cache) {
        cache.reload(cp.cursorCluster(), cp.cursorUsed());
      } else {
        store.open(cp.cursorCluster(), true);
      }
      allocator.restoreCursor(cp.cursorCluster(), cp.cursorUsed());
    }
    sequence = cp.sequence();
    committedSequence = cp.sequence();
    guestClustersDone = cp.guestClustersDone();
    zeroClusters = cp.zeroClusters();
    rawClusters = cp.rawClusters();
    compressedClusters = cp.compressedClusters();
    duplicates = cp.duplicates();
    payloadBytes = cp.payloadBytes();
    LOG.info("[target={}] resumed at checkpoint {}: {} of {} ranges complete",
        target.getFileName(), cp.sequence(), ranges.completeCount(), ranges.ranges());
  }

  /**
   * Accepts one guest cluster. Thread safe; validates before it allocates (a bad payload throws
   * {@link CorruptException} and leaves no trace). ZERO takes an empty payload, RAW exactly one
   * cluster, COMPRESSED 1 to cluster_size - 1 bytes. The payload's position is not moved and the
   * buffer may be reused once this returns. May block while the cluster-fill cache is full.
   */
  public PutResult put(long guestCluster, ClusterKind kind, ByteBuffer payload) {
    return put(guestCluster, kind, payload, null);
  }

  /**
   * As {@link #put(long, ClusterKind, ByteBuffer)}, with the SHA-256 of the cluster as read
   * ({@link Manifest#digest}) for the image's digest manifest; null: computed here from the
   * payload (a compressed one is decompressed for it).
   */
  public PutResult put(long guestCluster, ClusterKind kind, ByteBuffer payload, byte[] digest) {
    validate(guestCluster, kind, payload);
    if (kind == ClusterKind.ZERO) {
      return putZeros(guestCluster, 1) == 1 ? PutResult.ACCEPTED : PutResult.DUPLICATE;
    }
    long offset;
    lock.lock();
    try {
      checkOpen();
      if (ranges.isReceived(guestCluster)) {
        duplicates++;
        return PutResult.DUPLICATE;
      }
      int length = payload.remaining();
      if (kind == ClusterKind.RAW) {
        offset = allocator.allocateCluster();
        ranges.setEntry(guestCluster, L2Entry.standard(offset));
        rawClusters++;
      } else {
        offset = allocator.allocateBytes(length);
        ranges.setEntry(guestCluster, L2Entry.compressed(offset, length, geometry.clusterBits()));
        compressedClusters++;
      }
      payloadBytes += length;
      guestClustersDone++;
      ranges.mark(guestCluster, 1, this::rangeComplete);
    } finally {
      lock.unlock();
    }
    store.fill(offset, payload);
    digests.accepted(guestCluster, kind, payload, digest);
    return PutResult.ACCEPTED;
  }

  /**
   * Checks a cluster the way {@link #put} does, without accepting it: lets a caller refuse a whole
   * batch before writing any of it. Thread safe.
   *
   * @throws CorruptException when {@link #put} would refuse it
   */
  public void validate(long guestCluster, ClusterKind kind, ByteBuffer payload) {
    if (guestCluster < 0 || guestCluster >= geometry.guestClusters()) {
      throw new CorruptException("guest cluster " + guestCluster + " is outside the image (0.."
          + (geometry.guestClusters() - 1) + ")");
    }
    int n = payload.remaining();
    switch (kind) {
      case ZERO -> {
        if (n != 0) {
          throw new CorruptException("zero cluster " + guestCluster + " carries a " + n + "-byte payload");
        }
      }
      case RAW -> {
        if (n != cs) {
          throw new CorruptException("raw cluster " + guestCluster + " has " + n + " bytes, not " + cs);
        }
      }
      case COMPRESSED -> {
        if (n < 1 || n > cs - 1) {
          throw new CorruptException("compressed cluster " + guestCluster + " has " + n
              + " bytes (must be 1.." + (cs - 1) + ")");
        }
        if (options.verifyPayloads()) {
          ByteBuffer scratch = SCRATCH.get();
          if (scratch.capacity() < cs) {
            scratch = ByteBuffer.allocate(cs);
            SCRATCH.set(scratch);
          }
          decoders.get().decode(options.codec(), payload, scratch.clear(), "guest cluster " + guestCluster);
        }
      }
    }
  }

  private static final ThreadLocal<ByteBuffer> SCRATCH = ThreadLocal.withInitial(() -> ByteBuffer.allocate(0));

  /**
   * Accepts {@code count} guest clusters from {@code first} as zeros (holes, zero runs); those
   * that had already arrived keep what they had.
   *
   * @return how many had not arrived before
   */
  public long putZeros(long first, long count) {
    checkRun("zero", first, count);
    lock.lock();
    try {
      checkOpen();
      if (options.backing() != null) {
        // Before mark: marking may complete the range and write its L2 table.
        for (long g = first; g < first + count; g++) {
          if (!ranges.isReceived(g)) {
            ranges.setEntry(g, L2Entry.ZERO);
          }
        }
      }
      long added = ranges.mark(first, count, this::rangeComplete);
      zeroClusters += added;
      guestClustersDone += added;
      duplicates += count - added;
      return added;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Overlays only: {@code count} guest clusters from {@code first} did not change since the
   * backing file; they get no L2 entry, so reads fall through to the backing file. Those that had
   * already arrived keep what they had.
   *
   * @return how many had not arrived before
   */
  public long putUnchanged(long first, long count) {
    if (options.backing() == null) {
      throw new IllegalStateException("unchanged clusters need a backing file; " + target + " has none");
    }
    checkRun("unchanged", first, count);
    digests.unchanged(first, count); // before the mark, which may let the image finish
    lock.lock();
    try {
      checkOpen();
      long added = ranges.mark(first, count, this::rangeComplete);
      guestClustersDone += added;
      return added;
    } finally {
      lock.unlock();
    }
  }

  private void checkRun(String kind, long first, long count) {
    if (first < 0 || count < 0 || first + count > geometry.guestClusters()) {
      throw new CorruptException(kind + " run " + first + "+" + count + " is outside the image (0.."
          + (geometry.guestClusters() - 1) + ")");
    }
  }

  /** Under lock: a range is complete; write the L2 tables that were waiting only for it. */
  private void rangeComplete(long range) {
    long[] span = ranges.tablesOf(range);
    for (long t = span[0]; t <= span[1]; t++) {
      if (ranges.tableReady(t)) {
        long[] entries = ranges.takeTable(t);
        if (entries != null) {
          writeL2(t, entries);
        }
      }
    }
  }

  private void writeL2(long t, long[] entries) {
    ByteBuffer table = ByteBuffer.allocate(cs).order(ByteOrder.BIG_ENDIAN);
    table.asLongBuffer().put(entries);
    long offset = allocator.allocateCluster();
    store.fill(offset, table);
    l1.putLong((int) (t * 8), L2Entry.standard(offset));
  }

  /** True once every guest cluster has arrived. */
  public boolean isComplete() {
    lock.lock();
    try {
      return ranges.completeCount() == ranges.ranges();
    } finally {
      lock.unlock();
    }
  }

  /** Ranges whose every cluster has arrived (a copy). */
  public BitSet completeRanges() {
    lock.lock();
    try {
      return ranges.completeRanges();
    } finally {
      lock.unlock();
    }
  }

  public ImageStats stats() {
    lock.lock();
    try {
      return new ImageStats(guestClustersDone, zeroClusters, rawClusters, compressedClusters, duplicates,
          payloadBytes, allocator.nextFree() * cs, file.writes(), file.bytesWritten(), ranges.completeCount());
    } finally {
      lock.unlock();
    }
  }

  /**
   * Makes everything accepted so far durable and returns where to continue from. Waits until
   * every allocated byte has been filled; blocks {@link #put} meanwhile. The state file of the
   * previous checkpoint is kept until {@link #checkpointCommitted} says this one is safe.
   */
  public Checkpoint checkpoint() {
    lock.lock();
    try {
      checkOpen();
      checkTarget("checkpoint");
      return noteTargetFailure(this::checkpointLocked);
    } finally {
      lock.unlock();
    }
  }

  /** Under lock. */
  private Checkpoint checkpointLocked() {
    store.flush();
    writeMetadata();
    long seq = sequence + 1;
    states.save(seq, ranges);
    file.force();
    digests.force();
    StateFiles.fsyncDirectory(part.toAbsolutePath().getParent());
    sequence = seq;
    long cursor = allocator.cursorCluster();
    return new Checkpoint(seq, allocator.nextFree(), cursor, allocator.cursorUsed(),
        cursor >= 0 ? refcounts.get(cursor) : 0, guestClustersDone, zeroClusters, rawClusters,
        compressedClusters, duplicates, payloadBytes, ranges.completeCount());
  }

  /** Under lock: refuses, without touching the file, once a target I/O error was met. */
  private void checkTarget(String what) {
    if (targetFailed != null) {
      throw new TargetIoException(what + " of " + part + " refused: " + targetFailed.getMessage()
          + " earlier; the job resumes from its last checkpoint", targetFailed.file(), targetFailed);
    }
  }

  /** Under lock: runs {@code step}, remembering a target I/O error it throws. */
  private <T> T noteTargetFailure(java.util.function.Supplier<T> step) {
    try {
      return step.get();
    } catch (TargetIoException e) {
      targetFailed = e;
      throw e;
    }
  }

  /**
   * The checkpoint is recorded where a resume will find it: state files older than the one
   * committed before it can go. That one stays, so a resume can fall back to it when the newest
   * state file is damaged.
   */
  public void checkpointCommitted(Checkpoint committed) {
    states.deleteBelow(committedSequence >= 0 ? Math.min(committedSequence, committed.sequence()) : committed.sequence());
    committedSequence = committed.sequence();
  }

  /** Refcount blocks in memory, the refcount table, the L1 table and the header. */
  private void writeMetadata() {
    refcounts.writeLiveAndTable();
    file.write(l1.duplicate().clear(), geometry.l1Offset());
    ByteBuffer header = DirectFile.allocateAligned(cs, file.alignment());
    header.put(Header.forImage(geometry, options.codec()).encode(options.backing()));
    file.write(header.clear(), 0);
  }

  /**
   * Finishes a complete image: writes what remains, the metadata and the header, makes it durable
   * and renames {@code TARGET.part} to TARGET (then fsyncs the directory).
   */
  public void finish() {
    lock.lock();
    try {
      checkOpen();
      if (ranges.completeCount() != ranges.ranges()) {
        throw new IllegalStateException("image is not complete: " + ranges.completeCount() + " of "
            + ranges.ranges() + " ranges");
      }
      checkTarget("finishing");
      noteTargetFailure(() -> {
        finishLocked();
        return null;
      });
      finished = true;
    } finally {
      lock.unlock();
    }
    store.close();
    file.close();
    states.deleteBelow(Long.MAX_VALUE);
  }

  /** Under lock: writes what remains and the metadata, syncs, renames. */
  private void finishLocked() {
    allocator.closeCursor();
    store.flush();
    refcounts.retireBelow(Long.MAX_VALUE);
    writeMetadata();
    file.extendTo(allocator.nextFree() * cs);
    file.force();
    // The manifest first: an image at TARGET always has its manifest beside it.
    digests.publish(part);
    // Rename while the fence is still held: a new leader must never reopen the .part between
    // the last write and the rename.
    try {
      Files.move(part, target, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw TargetIoException.of("renaming " + part + " to " + target, target, e);
    }
    StateFiles.fsyncDirectory(target.toAbsolutePath().getParent());
  }

  /**
   * Every later write to the file — from the caller, the cache's writer threads, a checkpoint or
   * the finish — first asks {@code mayWrite} and is refused ({@link FencedWriteException},
   * nothing written) when it says no. Queued cache writes then fail instead of reaching the file,
   * and the image fails: close it, and let the next term resume from the last checkpoint.
   */
  public ImageWriter guardWrites(java.util.function.BooleanSupplier mayWrite) {
    file.guardWrites(mayWrite);
    return this;
  }

  /** Stops and removes {@code TARGET.part} and its state files. */
  public void abort() {
    close();
    digests.abort();
    StateFiles.deleteQuietly(part);
    states.deleteBelow(Long.MAX_VALUE);
  }

  /** Stops without removing anything (a later run may resume from a checkpoint). */
  @Override
  public void close() {
    lock.lock();
    try {
      if (finished) {
        return;
      }
      finished = true;
    } finally {
      lock.unlock();
    }
    store.close();
    file.close();
    digests.close();
  }

  private void checkOpen() {
    if (finished) {
      throw new IllegalStateException("image writer for " + target + " is closed");
    }
  }

  /** Reads host bytes of the image being written (from the cache where it holds newer data). */
  public void readHost(long hostOffset, ByteBuffer dst) {
    store.read(hostOffset, dst);
  }
}
