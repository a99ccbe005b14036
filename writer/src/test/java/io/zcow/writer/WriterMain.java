package io.zcow.writer;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;

/**
 * A writer in a process of its own, for tests of what only a process shows: the OS lock only
 * fences between processes, and direct memory is bounded per JVM. Arguments: bootstrap,
 * zookeeper, target root, group, jobs, tasks, events topics, ZooKeeper root, and optionally the
 * cache budget and each job's slice in MiB, the attempts a range gets and the range timeout in ms.
 */
public final class WriterMain {
  private WriterMain() {}

  public static void main(String[] a) throws InterruptedException {
    WriterConfig c = WriterConfig.builder(a[0], a[1], Path.of(a[2])).group(a[3]).topics(a[4], a[5], a[6])
        .zkRoot(a[7]).checkpointInterval(Duration.ofMillis(500))
        .rangeTimeout(Duration.ofMillis(a.length > 11 ? Long.parseLong(a[11]) : 60_000))
        .maxRequeues(a.length > 10 ? Integer.parseInt(a[10]) : 5)
        .startTimeout(Duration.ofSeconds(60)).progressInterval(Duration.ofMillis(300))
        .cacheBytes(a.length > 8 ? Long.parseLong(a[8]) << 20 : 256L << 20)
        .jobCacheBytes(a.length > 9 ? Long.parseLong(a[9]) << 20 : 0).build();
    Writer w = new Writer(c, Clock.systemUTC()).start();
    Runtime.getRuntime().addShutdownHook(new Thread(w::close));
    Thread.sleep(Long.MAX_VALUE);
  }
}
