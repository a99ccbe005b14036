package io.zcow.worker.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.proto.kafka.KafkaSettings;
import io.zcow.source.SourceCache;
import io.zcow.source.nbd.NbdOptions;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

class WorkerConfigTest {
  private static final KafkaSettings KAFKA = KafkaSettings.of("localhost:9");

  @Test
  void defaultsAreThoseOfZcowWorker() {
    WorkerConfig c = WorkerConfig.builder(KAFKA).build();
    assertEquals(KAFKA, c.kafka());
    assertEquals(WorkerTopics.defaults(), c.topics());
    assertEquals(Runtime.getRuntime().availableProcessors(), c.threads());
    assertTrue(c.sources().allowsAll(), "every local source, no NBD export");
    assertEquals(SourceCache.AUTO, c.sourceCache());
    assertEquals(0, c.maxReadBytesPerSecond());
    assertTrue(c.origin().startsWith("worker@") && c.origin().length() > "worker@".length(), c.origin());
    assertEquals(Duration.ofMillis(500), c.pollTimeout());
    assertNull(c.renewInterval(), "half the broker's lock duration");
    assertEquals(Duration.ofSeconds(30), c.stopGrace());
    assertEquals(Duration.ofSeconds(30), c.connectTimeout());
    assertEquals(Duration.ofSeconds(30), c.jobsTimeout());
    assertEquals(Duration.ofMinutes(2), c.sendTimeout());
    assertEquals(Duration.ofSeconds(2), c.releaseBackoff());
    assertEquals(NbdOptions.defaults(), c.nbd());
    assertEquals(WorkerConfig.DEFAULT_IDLE_BOUND, c.idleBound());
  }

  @Test
  void refusesAnOutOfRangeValueNamingIt() {
    Duration zero = Duration.ZERO;
    Duration negative = Duration.ofMillis(-1);
    refused("threads", b -> b.threads(0));
    refused("threads", b -> b.threads(WorkerConfig.MAX_THREADS + 1));
    refused("maxReadBytesPerSecond", b -> b.maxReadBytesPerSecond(-1));
    refused("maxReadBytesPerSecond", b -> b.maxReadBytesPerSecond(Double.NaN));
    refused("maxReadBytesPerSecond", b -> b.maxReadBytesPerSecond(Double.POSITIVE_INFINITY));
    refused("pollTimeout", b -> b.pollTimeout(zero));
    refused("renewInterval", b -> b.renewInterval(zero));
    refused("stopGrace", b -> b.stopGrace(negative));
    refused("stopGrace", b -> b.stopGrace(null));
    refused("connectTimeout", b -> b.connectTimeout(zero));
    refused("jobsTimeout", b -> b.jobsTimeout(negative));
    refused("sendTimeout", b -> b.sendTimeout(null));
    refused("releaseBackoff", b -> b.releaseBackoff(negative));
    refused("idleBound", b -> b.idleBound(zero));
    assertThrows(NullPointerException.class, () -> WorkerConfig.builder(null));
    assertThrows(NullPointerException.class, () -> WorkerConfig.builder(KAFKA).origin(null));
  }

  @Test
  void acceptsTheEdgesOfEachRange() {
    WorkerConfig c = WorkerConfig.builder(KAFKA).threads(WorkerConfig.MAX_THREADS).stopGrace(Duration.ZERO)
        .releaseBackoff(Duration.ZERO).renewInterval(null).build();
    assertEquals(WorkerConfig.MAX_THREADS, c.threads());
    assertEquals(Duration.ZERO, c.stopGrace());
    assertEquals(Duration.ZERO, c.releaseBackoff());
    assertEquals(1, WorkerConfig.builder(KAFKA).threads(1).build().threads());
  }

  @Test
  void toBuilderCopiesEveryFieldAndLeavesTheOriginalAlone() {
    WorkerConfig c = WorkerConfig.builder(KAFKA).topics(new WorkerTopics("j", "t", "e", "g")).threads(3)
        .sources(SourcePolicy.allowing(List.of(Path.of("/srv/disks")))).sourceCache(SourceCache.WRITEBACK)
        .maxReadBytesPerSecond(5e6).origin("worker@test").pollTimeout(Duration.ofMillis(50))
        .renewInterval(Duration.ofSeconds(3)).stopGrace(Duration.ofSeconds(4)).connectTimeout(Duration.ofSeconds(5))
        .jobsTimeout(Duration.ofSeconds(6)).sendTimeout(Duration.ofSeconds(7)).releaseBackoff(Duration.ofSeconds(8))
        .nbd(NbdOptions.defaults().withConnections(2)).idleBound(Duration.ofSeconds(9)).build();
    assertEquals(fields(c), fields(c.toBuilder().build()));

    WorkerConfig.Builder b = c.toBuilder().threads(2);
    WorkerConfig two = b.build();
    b.threads(5);
    assertEquals(3, c.threads(), "the original keeps its value");
    assertEquals(2, two.threads(), "a built config does not follow its builder");
    List<Object> rest = fields(two);
    rest.set(2, 3);
    assertEquals(fields(c), rest, "only threads changed");
    assertNotEquals(fields(c), fields(WorkerConfig.builder(KAFKA).build()));
  }

  private static void refused(String field, UnaryOperator<WorkerConfig.Builder> change) {
    BadInputException e = assertThrows(BadInputException.class, () -> change.apply(WorkerConfig.builder(KAFKA)).build());
    assertTrue(e.getMessage().startsWith(field + " must "), e.getMessage());
    assertTrue(!e.getMessage().contains("\n"), "one line");
  }

  private static List<Object> fields(WorkerConfig c) {
    return Arrays.asList(c.kafka(), c.topics(), c.threads(), c.sources(), c.sourceCache(), c.maxReadBytesPerSecond(),
        c.origin(), c.pollTimeout(), c.renewInterval(), c.stopGrace(), c.connectTimeout(), c.jobsTimeout(),
        c.sendTimeout(), c.releaseBackoff(), c.nbd(), c.idleBound());
  }
}
