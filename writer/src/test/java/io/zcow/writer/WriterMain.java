package io.zcow.writer;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;

/**
 * A writer in a process of its own, for the cross-process fencing test: the OS lock only fences
 * between processes. Arguments: bootstrap, zookeeper, target root, group, jobs, tasks, events
 * topics, ZooKeeper root.
 */
public final class WriterMain {
  private WriterMain() {}

  public static void main(String[] a) throws InterruptedException {
    WriterConfig c = WriterConfig.defaults(a[0], a[1], Path.of(a[2])).withGroup(a[3]).withTopics(a[4], a[5], a[6])
        .withZkRoot(a[7]).withTimes(Duration.ofMillis(500), Duration.ofSeconds(60), Duration.ofMillis(300));
    Writer w = new Writer(c, Clock.systemUTC()).start();
    Runtime.getRuntime().addShutdownHook(new Thread(w::close));
    Thread.sleep(Long.MAX_VALUE);
  }
}
