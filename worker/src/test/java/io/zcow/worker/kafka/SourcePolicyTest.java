package io.zcow.worker.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.source.SourceLocation;
import io.zcow.source.nbd.NbdUri;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SourcePolicyTest {
  @TempDir Path dir;

  @Test
  void allowsSourcesUnderAPrefixAsPathOrFileUri() throws Exception {
    Path allowed = Files.createDirectory(dir.resolve("disks"));
    Path disk = Files.write(allowed.resolve("a.img"), new byte[512]);
    SourcePolicy p = SourcePolicy.allowing(List.of(allowed));
    assertEquals(new SourceLocation.LocalFile(disk.toRealPath()), assertInstanceOf(SourcePolicy.Verdict.Readable.class, p.judge(disk.toString())).location());
    assertInstanceOf(SourcePolicy.Verdict.Readable.class, p.judge(disk.toUri().toString()));
    assertInstanceOf(SourcePolicy.Verdict.Readable.class, p.judge("file://localhost" + disk));
    // An allowed prefix may be the file itself.
    assertInstanceOf(SourcePolicy.Verdict.Readable.class, SourcePolicy.allowing(List.of(disk)).judge(disk.toString()));
  }

  @Test
  void dotDotAndLinksCannotEscapeThePrefix() throws Exception {
    Path allowed = Files.createDirectory(dir.resolve("disks"));
    Path secret = Files.write(dir.resolve("secret.img"), new byte[512]);
    Path link = Files.createSymbolicLink(allowed.resolve("link.img"), secret);
    SourcePolicy p = SourcePolicy.allowing(List.of(allowed));
    SourcePolicy.Verdict v = p.judge(allowed + "/../secret.img");
    assertTrue(assertInstanceOf(SourcePolicy.Verdict.NotHere.class, v).reason().contains("outside"), v.toString());
    assertInstanceOf(SourcePolicy.Verdict.NotHere.class, p.judge(link.toString()));
  }

  @Test
  void theSecureDefaultReadsNoLocalSourceUntilAPrefixNamesIt() throws Exception {
    Path disk = Files.write(dir.resolve("disk.img"), new byte[512]);
    SourcePolicy none = SourcePolicy.allowingOnly(List.of(), List.of());
    assertFalse(none.allowsAll());
    assertTrue(assertInstanceOf(SourcePolicy.Verdict.NotHere.class, none.judge(disk.toString())).reason()
        .contains("(none: allow it with --source-allow DIR)"));
    assertInstanceOf(SourcePolicy.Verdict.Readable.class,
        SourcePolicy.allowingOnly(List.of(disk), List.of()).judge(disk.toString()));
    assertTrue(SourcePolicy.allowing(List.of(), List.of()).allowsAll(), "--insecure keeps any local source");
  }

  @Test
  void prefixesAreWholePathComponents() throws Exception {
    Path sd = Files.createDirectory(dir.resolve("sd"));
    Path sdb = Files.write(dir.resolve("sdb"), new byte[512]);
    assertInstanceOf(SourcePolicy.Verdict.NotHere.class, SourcePolicy.allowing(List.of(sd)).judge(sdb.toString()));
  }

  @Test
  void missingSourceIsNotHereAndNonsenseIsInvalid() {
    SourcePolicy p = SourcePolicy.allowAll();
    assertTrue(assertInstanceOf(SourcePolicy.Verdict.NotHere.class, p.judge(dir.resolve("none.img").toString()))
        .reason().contains("does not exist on this host"));
    assertInstanceOf(SourcePolicy.Verdict.NotHere.class, p.judge("nbd://host/export"));
    assertInstanceOf(SourcePolicy.Verdict.NotHere.class, p.judge("file://otherhost/disk.img"));
    assertInstanceOf(SourcePolicy.Verdict.Invalid.class, p.judge("relative/disk.img"));
    assertInstanceOf(SourcePolicy.Verdict.Invalid.class, p.judge(""));
    assertInstanceOf(SourcePolicy.Verdict.Invalid.class, p.judge("/nul\0byte"));
  }

  @Test
  void refusesRelativePrefixes() {
    assertThrows(IllegalArgumentException.class, () -> SourcePolicy.allowing(List.of(Path.of("rel"))));
  }

  @Test
  void nbdExportsAreReadOnlyWhenAllowedByHostPortAndExport() {
    SourcePolicy p = SourcePolicy.allowing(List.of(), List.of(NbdUri.parse("nbd://NAS.example:10809/vm1"),
        NbdUri.parse("nbd+unix:///vm2?socket=/run/nbd/../nbd/vm2.sock")));
    assertEquals(new SourceLocation.NbdExport(NbdUri.parse("nbd://nas.example/vm1")),
        assertInstanceOf(SourcePolicy.Verdict.Readable.class, p.judge("nbd://nas.example/vm1")).location(),
        "the default port and the host's case make no difference");
    assertInstanceOf(SourcePolicy.Verdict.Readable.class, p.judge("nbds://nas.example:10809/vm1"));
    assertInstanceOf(SourcePolicy.Verdict.Readable.class, p.judge("nbd+unix:///vm2?socket=/run/nbd/vm2.sock"));
    for (String other : List.of("nbd://nas.example/vm10", "nbd://nas.example/vm", "nbd://nas.example.evil/vm1",
        "nbd://nas.example:10810/vm1", "nbd+unix:///vm1?socket=/run/nbd/vm2.sock", "nbd://other/vm1")) {
      SourcePolicy.Verdict v = p.judge(other);
      assertTrue(assertInstanceOf(SourcePolicy.Verdict.NotHere.class, v, other).reason().contains("not among"), v.toString());
    }
    assertInstanceOf(SourcePolicy.Verdict.Invalid.class, p.judge("nbd://nas.example:0x/vm1"));
  }

  @Test
  void aWorkerWithoutAllowedExportsReadsNoNetworkSource() {
    SourcePolicy.Verdict v = SourcePolicy.allowAll().judge("nbd://127.0.0.1/disk");
    assertTrue(assertInstanceOf(SourcePolicy.Verdict.NotHere.class, v).reason().contains("--source-allow nbd://127.0.0.1:10809/disk"),
        v.toString());
    assertInstanceOf(SourcePolicy.Verdict.Readable.class,
        SourcePolicy.allowAllAnd(List.of(NbdUri.parse("nbd://127.0.0.1/disk"))).judge("nbd://127.0.0.1:10809/disk"));
  }
}
