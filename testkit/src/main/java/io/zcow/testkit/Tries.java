package io.zcow.testkit;

import java.util.Random;
import java.util.SplittableRandom;

/**
 * Property tests in plain JUnit: a property runs a number of tries, each with a {@link Gen}
 * seeded from a fixed base seed, so every run tries the same inputs and a failure names the seed
 * of its try; {@code -Dzcow.tries.seed=S} runs that one try again, and a found case becomes a
 * plain test beside the property. {@code -Dzcow.tries.base=B} tries other inputs.
 */
public final class Tries {
  private static final long BASE = Long.getLong("zcow.tries.base", 0x2026_1207L);

  private Tries() {}

  /** What a property checks for one generated input. */
  @FunctionalInterface
  public interface Body {
    void run(Gen gen) throws Throwable;
  }

  /** Runs {@code body} {@code tries} times (once, for {@code -Dzcow.tries.seed}). */
  public static void run(int tries, Body body) {
    String one = System.getProperty("zcow.tries.seed");
    if (one != null && !one.isBlank()) {
      runOne(0, Long.parseLong(one.trim()), body);
      return;
    }
    SplittableRandom seeds = new SplittableRandom(BASE);
    for (int i = 0; i < tries; i++) {
      runOne(i, seeds.nextLong(), body);
    }
  }

  private static void runOne(int i, long seed, Body body) {
    try {
      body.run(new Gen(seed));
    } catch (Throwable t) {
      throw new AssertionError("try " + i + " failed with seed " + seed + " (again: -Dzcow.tries.seed=" + seed
          + "): " + t, t);
    }
  }

  /** Inputs drawn from one seed. */
  public static final class Gen {
    private final long seed;
    private final Random random;

    public Gen(long seed) {
      this.seed = seed;
      this.random = new Random(seed);
    }

    /** The seed of this try (also good as the seed of a {@link HostileBytes} mutation). */
    public long seed() {
      return seed;
    }

    public long anyLong() {
      return random.nextLong();
    }

    public boolean bool() {
      return random.nextBoolean();
    }

    /** An int in {@code [min, max]}. */
    public int between(int min, int max) {
      return min + random.nextInt(max - min + 1);
    }

    /** A long in {@code [min, max]}. */
    public long between(long min, long max) {
      return min + (long) (random.nextDouble() * (max - min + 1));
    }

    /** True with probability {@code p}. */
    public boolean chance(double p) {
      return random.nextDouble() < p;
    }

    /** Arbitrary bytes, of a length up to {@code maxLength} (small ones and empty ones often). */
    public byte[] bytes(int maxLength) {
      int n = chance(0.05) ? 0 : chance(0.3) ? between(0, Math.min(16, maxLength)) : between(0, maxLength);
      byte[] b = new byte[n];
      random.nextBytes(b);
      return b;
    }

    /** A string of {@code alphabet}'s characters, of a length in {@code [min, max]}. */
    public String chars(String alphabet, int min, int max) {
      int n = between(min, max);
      StringBuilder s = new StringBuilder(n);
      for (int i = 0; i < n; i++) {
        s.append(alphabet.charAt(random.nextInt(alphabet.length())));
      }
      return s.toString();
    }

    /** Any UTF-16 characters (lone surrogates and controls included), up to {@code max} of them. */
    public String anyString(int max) {
      int n = between(0, max);
      StringBuilder s = new StringBuilder(n);
      for (int i = 0; i < n; i++) {
        s.append(chance(0.5) ? (char) between(0, 127) : (char) random.nextInt(Character.MAX_VALUE + 1));
      }
      return s.toString();
    }

    /** One of {@code n} choices, {@code 0..n-1}. */
    public int oneOf(int n) {
      return random.nextInt(n);
    }
  }
}
