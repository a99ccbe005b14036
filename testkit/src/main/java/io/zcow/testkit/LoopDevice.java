package io.zcow.testkit;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/**
 * A real block device for a test: a loop device over a file ({@code losetup -f --show FILE}),
 * detached by {@link #close()}. Needs root and loop devices: without them the test is skipped.
 */
public final class LoopDevice implements AutoCloseable {
  private static final Duration TIMEOUT = Duration.ofSeconds(30);

  private final Path losetup;
  private final Path device;

  private LoopDevice(Path losetup, Path device) {
    this.losetup = losetup;
    this.device = device;
  }

  /** Attaches {@code file} to a free loop device. */
  public static LoopDevice attach(Path file) {
    Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "loop devices need root");
    Assumptions.assumeTrue(Files.exists(Path.of("/dev/loop-control")),
        "no /dev/loop-control: loop devices unavailable here");
    Path losetup = Tools.require("losetup", "mount", "/usr/sbin", "/sbin");
    Tools.Result r = Tools.run(List.of(losetup.toString(), "-f", "--show", file.toString()), TIMEOUT);
    String out = r.stdout().trim();
    Assumptions.assumeTrue(r.exitCode() == 0 && out.startsWith("/dev/loop"),
        "losetup could not attach a loop device: " + r.output());
    return new LoopDevice(losetup, Path.of(out));
  }

  /** The device, e.g. {@code /dev/loop3}. */
  public Path path() {
    return device;
  }

  @Override
  public void close() {
    Tools.Result r = Tools.run(List.of(losetup.toString(), "-d", device.toString()), TIMEOUT);
    if (r.exitCode() != 0) {
      throw new IllegalStateException(r.describe());
    }
  }
}
