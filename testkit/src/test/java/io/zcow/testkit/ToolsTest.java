package io.zcow.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.opentest4j.TestAbortedException;

class ToolsTest {

  @Test
  void missingToolSkipsLocallyAndFailsOnCi() {
    String tool = "zcow-no-such-tool";
    if (Tools.onCi()) {
      AssertionError e =
          assertThrows(AssertionError.class, () -> Tools.require(tool, "some-package"));
      assertTrue(e.getMessage().contains("some-package must be installed"), e.getMessage());
    } else {
      TestAbortedException e =
          assertThrows(TestAbortedException.class, () -> Tools.require(tool, "some-package"));
      assertTrue(e.getMessage().contains("some-package must be installed"), e.getMessage());
    }
  }

  @Test
  void keepsStdoutAndStderrApartAndReportsTheExitCode() {
    Tools.Result r =
        Tools.run(List.of("sh", "-c", "echo out; echo err >&2; exit 3"), Duration.ofMinutes(1));
    assertEquals(3, r.exitCode());
    assertEquals("out\n", r.stdout());
    assertEquals("err\n", r.stderr());
  }

  @Test
  void killsAProcessThatOutlivesItsTimeout() {
    long t0 = System.nanoTime();
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () -> Tools.run(List.of("sleep", "30"), Duration.ofMillis(200)));
    assertTrue(e.getMessage().contains("did not finish"), e.getMessage());
    assertTrue(System.nanoTime() - t0 < Duration.ofSeconds(20).toNanos());
  }
}
