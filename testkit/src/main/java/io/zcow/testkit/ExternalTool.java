package io.zcow.testkit;

import java.nio.file.Path;

/** An external program a test needs, found on PATH: on CI a missing one fails the test, elsewhere it skips. */
public final class ExternalTool {
  private ExternalTool() {}

  /** The program {@code name} from Debian package {@code debianPackage}, or the test stops (see {@link Tools#require}). */
  public static Path require(String name, String debianPackage) {
    return Tools.require(name, debianPackage);
  }
}
