package io.zcow.testkit;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/**
 * A real ext4 file system on a block device whose writes can be made to fail with EIO, or slowed,
 * while it is mounted — the kernel, not a test seam, returns the errors to O_DIRECT writes and
 * fsync.
 *
 * <p>The stack (device-mapper's {@code error}/{@code delay} targets would be the usual tool, but
 * many CI kernels have no device-mapper and no {@code nbd} module):
 * <pre>
 *   backing file ─ nbdkit file plugin + error filter (+ delay filter) ─ Unix socket
 *     ─ nbdfuse (FUSE: the export as one file) ─ losetup ─ /dev/loopN ─ ext4 ─ mount point
 * </pre>
 * The error filter fails every write (EIO) while its trigger file exists: {@link #failWrites}
 * creates or removes it, so a test switches errors on and off mid-job. Reads never fail, so the
 * file system stays readable. The file system has no journal and is mounted {@code errors=continue}:
 * with a journal, ext4 aborts it on the first failed journal write and remounts read-only until
 * fsck, as it would on a real failing disk; here the test wants the disk back once the errors stop.
 *
 * <p>Needs root, {@code /dev/fuse}, a free loop device and the tools nbdkit, nbdfuse (Debian
 * {@code libnbd-bin}), losetup, mkfs.ext4, mount: without them the test is skipped, or fails when
 * {@code CI=true}. {@link #close()} unmounts and tears everything down, also after a failure half
 * way through {@link #start}.
 */
public final class FaultyDisk implements AutoCloseable {
  private final Path dir;
  private final Path mountPoint;
  private final Path trigger;
  private final Path fuseDir;
  private Long nbdkitPid;
  private Process nbdfuse;
  private String loop;
  private boolean mounted;

  private FaultyDisk(Path dir, Path mountPoint) {
    this.dir = dir;
    this.mountPoint = mountPoint;
    this.trigger = dir.resolve("fail-writes");
    this.fuseDir = dir.resolve("fuse");
  }

  /**
   * Makes a {@code size}-byte ext4 file system and mounts it at {@code mountPoint} (an existing
   * empty directory). {@code dir} holds the backing file, the socket and the FUSE mount.
   *
   * @param writeDelay added to every write request the disk serves (nbdkit's delay filter); zero
   *     for none
   */
  public static FaultyDisk start(Path dir, Path mountPoint, long size, Duration writeDelay) {
    Path nbdkit = Tools.require("nbdkit", "nbdkit");
    Path nbdfuse = Tools.require("nbdfuse", "libnbd-bin");
    Path losetup = Tools.require("losetup", "mount", "/usr/sbin", "/sbin");
    Path mkfs = Tools.require("mkfs.ext4", "e2fsprogs", "/usr/sbin", "/sbin");
    Path mount = Tools.require("mount", "mount", "/usr/bin", "/bin");
    requireThat(Unprivileged.isRoot(), "a loop device and a mount need root");
    requireThat(Files.exists(Path.of("/dev/fuse")), "/dev/fuse is missing (no FUSE in this kernel or container)");
    FaultyDisk disk;
    try {
      disk = new FaultyDisk(Files.createDirectories(dir), mountPoint);
    } catch (IOException e) {
      throw new IllegalStateException("cannot create " + dir + ": " + e.getMessage(), e);
    }
    try {
      disk.serve(nbdkit, size, writeDelay);
      disk.fuse(nbdfuse);
      disk.loop = run(List.of(losetup.toString(), "--find", "--show", disk.fuseDir.resolve("nbd").toString()))
          .stdout().trim();
      run(List.of(mkfs.toString(), "-q", "-F", "-b", "4096", "-O", "^has_journal", disk.loop));
      run(List.of(mount.toString(), "-o", "errors=continue", disk.loop, mountPoint.toString()));
      disk.mounted = true;
      return disk;
    } catch (RuntimeException | Error e) {
      disk.close();
      throw e;
    }
  }

  private void serve(Path nbdkit, long size, Duration writeDelay) {
    Path backing = dir.resolve("backing.img");
    Path pidFile = dir.resolve("nbdkit.pid");
    try {
      Files.deleteIfExists(pidFile);
      try (var f = new java.io.RandomAccessFile(backing.toFile(), "rw")) {
        f.setLength(size);
      }
    } catch (IOException e) {
      throw new IllegalStateException("cannot make " + backing + ": " + e.getMessage(), e);
    }
    List<String> cmd = new ArrayList<>(List.of(nbdkit.toString(), "-U", dir.resolve("nbd.sock").toString(),
        "-P", pidFile.toString(), "--filter=error"));
    if (!writeDelay.isZero()) {
      cmd.add("--filter=delay");
    }
    cmd.addAll(List.of("file", "file=" + backing, "error=EIO", "error-pwrite-rate=100%",
        "error-pwrite-file=" + trigger));
    if (!writeDelay.isZero()) {
      cmd.add("delay-write=" + writeDelay.toMillis() + "ms");
    }
    run(cmd); // nbdkit forks once it listens
    nbdkitPid = Long.parseLong(awaitFile(pidFile, "nbdkit's pid file").trim());
  }

  private void fuse(Path nbdfuseTool) {
    try {
      Files.createDirectories(fuseDir);
      Path pidFile = dir.resolve("nbdfuse.pid");
      Files.deleteIfExists(pidFile);
      nbdfuse = new ProcessBuilder(nbdfuseTool.toString(), "-P", pidFile.toString(), fuseDir.toString(), "--unix",
          dir.resolve("nbd.sock").toString())
          .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
          .redirectErrorStream(true).redirectOutput(dir.resolve("nbdfuse.log").toFile()).start();
      awaitFile(pidFile, "nbdfuse's pid file (" + dir.resolve("nbdfuse.log") + ")");
    } catch (IOException e) {
      throw new IllegalStateException("cannot start nbdfuse: " + e.getMessage(), e);
    }
  }

  /** Where the file system is mounted. */
  public Path mountPoint() {
    return mountPoint;
  }

  /** The loop device under the file system (e.g. {@code /dev/loop3}). */
  public String device() {
    return loop;
  }

  /**
   * From now on every write to the disk fails with EIO ({@code on}), or succeeds again. Takes
   * effect with the next write request the server sees; writes the kernel still holds in its
   * page cache fail when they are written back.
   */
  public void failWrites(boolean on) {
    try {
      if (on) {
        Files.writeString(trigger, "");
      } else {
        Files.deleteIfExists(trigger);
      }
    } catch (IOException e) {
      throw new IllegalStateException("cannot switch write errors " + (on ? "on" : "off") + ": " + e, e);
    }
  }

  /** Unmounts and tears down every layer that was set up; safe to call more than once. */
  @Override
  public void close() {
    List<String> problems = new ArrayList<>();
    failWritesQuietly();
    if (mounted) {
      if (!unmount(mountPoint)) {
        problems.add("cannot unmount " + mountPoint);
      }
      mounted = false;
    }
    if (loop != null && !loop.isEmpty()) {
      if (quietly(List.of(Tools.find("losetup", "/usr/sbin", "/sbin").map(Path::toString).orElse("losetup"), "-d",
          loop)) != 0) {
        problems.add("cannot detach " + loop);
      }
      loop = null;
    }
    if (nbdfuse != null) {
      if (!unmount(fuseDir)) {
        problems.add("cannot unmount " + fuseDir);
      }
      stop(nbdfuse.toHandle());
      nbdfuse = null;
    }
    if (nbdkitPid != null) {
      ProcessHandle.of(nbdkitPid).ifPresent(FaultyDisk::stop);
      nbdkitPid = null;
    }
    if (!problems.isEmpty()) {
      throw new IllegalStateException("FaultyDisk teardown: " + String.join("; ", problems));
    }
  }

  private void failWritesQuietly() {
    try {
      Files.deleteIfExists(trigger);
    } catch (IOException ignored) {
      // the server goes away below
    }
  }

  /** Unmounts, waiting a little for files that are still being closed; lazily as a last resort. */
  private static boolean unmount(Path mountPoint) {
    String umount = Tools.find("umount", "/usr/bin", "/bin").map(Path::toString).orElse("umount");
    for (int i = 0; i < 40; i++) {
      if (quietly(List.of(umount, mountPoint.toString())) == 0) {
        return true;
      }
      sleep(250);
    }
    return quietly(List.of(umount, "-l", mountPoint.toString())) == 0;
  }

  private static void stop(ProcessHandle h) {
    h.destroy();
    try {
      h.onExit().get(10, java.util.concurrent.TimeUnit.SECONDS);
    } catch (Exception e) {
      h.destroyForcibly();
    }
  }

  private static Tools.Result run(List<String> command) {
    Tools.Result r = Tools.run(command, Duration.ofSeconds(60));
    if (r.exitCode() != 0) {
      throw new IllegalStateException(r.describe());
    }
    return r;
  }

  private static int quietly(List<String> command) {
    try {
      return Tools.run(command, Duration.ofSeconds(30)).exitCode();
    } catch (RuntimeException e) {
      return -1;
    }
  }

  private static String awaitFile(Path file, String what) {
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    while (System.nanoTime() < deadline) {
      try {
        if (Files.exists(file)) {
          String s = Files.readString(file);
          if (!s.isBlank()) {
            return s;
          }
        }
      } catch (IOException e) {
        // not written yet
      }
      sleep(20);
    }
    throw new IllegalStateException("no " + what + " within 20 s");
  }

  private static void requireThat(boolean ok, String why) {
    if (ok) {
      return;
    }
    if (Tools.onCi()) {
      throw new AssertionError("FaultyDisk: " + why + "; CI=true, so this is a failure, not a skip");
    }
    Assumptions.assumeTrue(false, "FaultyDisk: " + why + "; test skipped");
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
