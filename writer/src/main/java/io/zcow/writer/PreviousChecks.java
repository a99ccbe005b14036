package io.zcow.writer;

import io.zcow.proto.JobSpec;
import io.zcow.qcow2.BackingFile;
import io.zcow.qcow2.ImageGeometry;
import io.zcow.qcow2.ManifestReader;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The check of each incremental job's previous image ({@link BackingFile#of}: its header, then
 * all of its metadata; and its digest manifest, {@link ManifestReader#open}), on a thread of its
 * own. At 16 TiB the check reads 2 GiB of L2 tables; on the term's thread it would hold up every other job of the group for that long, so the job waits
 * for its answer as it waits for a lock, asked again each turn. One check runs at a time.
 *
 * <p>Not thread safe: the term's thread asks; the checks run on the pool.
 */
final class PreviousChecks implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(PreviousChecks.class);

  private final ExecutorService pool = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "zcow-previous-image-check");
    t.setDaemon(true);
    return t;
  });
  /** A job submitted again is checked again. */
  private record Key(String job, long createdAtMs) {}

  private final Map<Key, Future<BackingFile>> running = new HashMap<>();

  /**
   * The checked backing file of {@code spec}'s target, or null while its check runs (the first
   * call starts it).
   *
   * @throws io.zcow.BadInputException when the previous image cannot back the target (why, in one line)
   */
  BackingFile result(JobSpec spec, Path previous, Path target, ImageGeometry geometry) {
    Key key = new Key(spec.getJobId(), spec.getCreatedAtMs());
    Future<BackingFile> check = running.computeIfAbsent(key, k -> {
      LOG.info("[job={}] checking the previous image {}", spec.getJobId(), previous);
      return pool.submit(() -> {
        BackingFile backing = BackingFile.of(previous, target, geometry);
        // By digest: PREV's manifest must be present and match PREV. Either way this reads PREV's
        // metadata for its identity here, off the term's thread; the image writer's own check
        // of it at open then finds it verified (ManifestReader caches a match by file state).
        String[] why = new String[1];
        ManifestReader manifest = spec.getByDigest() ? ManifestReader.open(previous)
            : ManifestReader.openIfUsable(previous, why);
        if (manifest != null) {
          manifest.close();
        }
        return backing;
      });
    });
    if (!check.isDone()) {
      return null;
    }
    running.remove(key);
    try {
      return check.get();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r;
      }
      throw new IllegalStateException(e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while the check of " + previous + " ended", e);
    }
  }

  /** Drops the check of a job that was cancelled while it ran. */
  void forget(String jobId) {
    running.entrySet().removeIf(e -> {
      boolean ours = e.getKey().job().equals(jobId);
      if (ours) {
        e.getValue().cancel(true);
      }
      return ours;
    });
  }

  @Override
  public void close() {
    pool.shutdownNow();
  }
}
