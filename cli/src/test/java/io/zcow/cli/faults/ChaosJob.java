package io.zcow.cli.faults;

import java.nio.file.Path;
import java.time.Instant;
import java.util.List;

/**
 * One backup of the chaos run: its source, its target, its coordinator. The coordinator can be
 * killed and run again by the fault thread while the job thread waits for the job to end, so the
 * coordinator is swapped under this object's lock and the job has ended only when the current
 * coordinator exited and none is being replaced. Thread safe.
 */
final class ChaosJob {
  final String id;
  final Path source;
  final Path image;
  final long size;
  final Instant submitted;
  private final List<String> args;
  private Role backup;
  private boolean replacing;
  private int coordinators = 1;

  ChaosJob(String id, Path source, Path image, long size, List<String> args, Role backup) {
    this.id = id;
    this.source = source;
    this.image = image;
    this.size = size;
    this.args = List.copyOf(args);
    this.backup = backup;
    this.submitted = Instant.now();
  }

  /** Kills the coordinator (kill -9) unless it has exited; returns it, or null when it had exited. */
  synchronized Role killCoordinator() {
    if (replacing || !backup.isAlive()) {
      return null;
    }
    replacing = true;
    backup.kill();
    return backup;
  }

  /** Runs the same command again with a new coordinator (after {@link #killCoordinator()}). */
  synchronized Role rerun(LoopbackCluster cluster) {
    coordinators++;
    backup = cluster.startBackup("backup-" + id + "-run" + coordinators, args);
    replacing = false;
    return backup;
  }

  /** True once the current coordinator has exited and none is being replaced. */
  synchronized boolean ended() {
    return !replacing && !backup.isAlive();
  }

  synchronized Role backup() {
    return backup;
  }

  synchronized int coordinators() {
    return coordinators;
  }

  Path part() {
    return image.resolveSibling(image.getFileName() + ".part");
  }
}
