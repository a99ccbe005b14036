package io.zcow.testkit;

import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;

/** Names for topics, groups and znodes that tests sharing one broker or server cannot collide on. */
final class UniqueNames {

  /** Separates JVMs that share a broker (a Testcontainers broker, a developer's local cluster). */
  private static final String JVM_TOKEN =
      Integer.toHexString(ThreadLocalRandom.current().nextInt() & 0x7fffffff);

  private static final AtomicLong COUNTER = new AtomicLong();

  private UniqueNames() {}

  /** Returns {@code prefix-<jvm token>-<counter>}; the prefix may use [A-Za-z0-9._-]. */
  static String next(String prefix) {
    if (prefix == null || !prefix.matches("[A-Za-z0-9._-]{1,200}")) {
      throw new IllegalArgumentException(
          "prefix must be 1-200 characters of [A-Za-z0-9._-], was " + prefix);
    }
    return prefix + "-" + JVM_TOKEN + "-" + COUNTER.incrementAndGet();
  }
}
