package io.zcow.cli.faults;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.cli.faults.ChaosSchedule.Fault;
import io.zcow.cli.faults.ChaosSchedule.Group;
import io.zcow.cli.faults.ChaosSchedule.Kind;
import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The chaos run's schedule: a function of the seed, hostile, and within the promises. */
class ChaosScheduleTest {
  private static final Duration RUN = Duration.ofMinutes(20);

  @Test
  void theSameSeedDrawsTheSameScheduleAndAnotherSeedAnother() {
    assertEquals(ChaosSchedule.draw(1, RUN), ChaosSchedule.draw(1, RUN));
    assertNotEquals(ChaosSchedule.draw(1, RUN), ChaosSchedule.draw(2, RUN));
    // A shorter run is the start of the longer one: a failure early in a long run reproduces in a short one.
    List<Fault> shortRun = ChaosSchedule.draw(1, Duration.ofMinutes(3));
    assertEquals(shortRun, ChaosSchedule.draw(1, RUN).subList(0, shortRun.size()));
  }

  @Test
  void everyKindIsDrawnAndFaultsComeEveryFewSecondsWithinTheRun() {
    for (long seed = 1; seed <= 20; seed++) {
      List<Fault> faults = ChaosSchedule.draw(seed, RUN);
      Set<Kind> kinds = EnumSet.noneOf(Kind.class);
      faults.forEach(f -> kinds.add(f.kind()));
      assertEquals(EnumSet.allOf(Kind.class), kinds, "seed " + seed);
      assertTrue(faults.size() > 60, "seed " + seed + ": " + faults.size() + " faults in 20 minutes");
      for (Fault f : faults) {
        assertTrue(f.at().compareTo(ChaosSchedule.FIRST) >= 0 && f.at().compareTo(RUN) < 0, f.toString());
      }
    }
  }

  @Test
  void neverTwoBrokersOrBothWritersOrAllWorkersOutAtOnce() {
    for (long seed = 1; seed <= 200; seed++) {
      List<Fault> faults = ChaosSchedule.draw(seed, RUN);
      for (int i = 0; i < faults.size(); i++) {
        Fault f = faults.get(i);
        int workersOut = 1;
        for (int j = 0; j < i; j++) {
          Fault o = faults.get(j);
          if (o.kind().group != f.kind().group) {
            continue;
          }
          switch (f.kind().group) {
            case BROKER -> assertTrue(o.end().plus(ChaosSchedule.BROKER_MARGIN).compareTo(f.at()) <= 0,
                o + " then " + f);
            case WRITER -> assertTrue(o.end().plus(ChaosSchedule.WRITER_MARGIN).compareTo(f.at()) <= 0,
                o + " then " + f);
            case COORDINATOR -> assertTrue(o.end().compareTo(f.at()) <= 0, o + " then " + f);
            case WORKER -> {
              if (o.end().compareTo(f.at()) > 0) {
                assertNotEquals(o.slot(), f.slot(), o + " then " + f);
                workersOut++;
              }
            }
          }
        }
        if (f.kind().group == Group.WORKER) {
          assertTrue(workersOut <= ChaosSchedule.WORKERS - 1, "seed " + seed + ": one worker stays up at " + f);
        }
      }
    }
  }
}
