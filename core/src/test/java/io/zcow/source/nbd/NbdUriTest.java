package io.zcow.source.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class NbdUriTest {

  @Test
  void readsHostPortAndExport() {
    NbdUri u = NbdUri.parse("nbd://backup.example:10810/vm1-disk0");
    assertEquals("backup.example", u.host());
    assertEquals(10810, u.port());
    assertEquals("vm1-disk0", u.export());
    assertFalse(u.tls());
    assertFalse(u.isUnix());
    assertEquals("backup.example:10810", u.address());
    assertEquals("nbd://backup.example:10810/vm1-disk0", u.toString());
  }

  @Test
  void takesTheSpecsDefaultsAndExamples() {
    assertEquals(NbdUri.DEFAULT_PORT, NbdUri.parse("nbd://h/disk").port());
    assertEquals("", NbdUri.parse("nbd://h").export());
    assertEquals("", NbdUri.parse("nbd://h/").export());
    assertEquals("/disk", NbdUri.parse("nbd://h//disk").export());
    assertEquals("hello world", NbdUri.parse("nbd://h/hello%20world").export());
    assertEquals("nbd://h:10809/hello%20world", NbdUri.parse("nbd://h/hello%20world").toString());
    assertTrue(NbdUri.parse("nbds://h/x").tls());
    NbdUri v6 = NbdUri.parse("nbd://[::1]:7000/x");
    assertEquals("::1", v6.host());
    assertEquals("[::1]:7000", v6.address());
    assertEquals(v6, NbdUri.parse(v6.toString()), "the canonical form reads back the same");
  }

  @Test
  void readsAUnixSocketUri() {
    NbdUri u = NbdUri.parse("nbd+unix:///disk?socket=/run/nbd%20x/a+b.sock");
    assertTrue(u.isUnix());
    assertEquals(Path.of("/run/nbd x/a+b.sock"), u.socket());
    assertEquals("disk", u.export());
    assertNull(u.host());
    assertEquals(u, NbdUri.parse(u.toString()));
  }

  @Test
  void refusesMalformedUrisInOneLine() {
    for (String bad : new String[] {"nbd:///disk", "nbd://h:99999/x", "nbd://h/x?tls-type=x509", "nbd+unix:///disk",
        "nbd+unix://host/disk?socket=/s", "nbd+unix:///d?socket=/s&x=1", "nbds+unix:///d?socket=/s", "nbd://u@h/x",
        "nbd://h/x#frag", "nbd://h/a b", "nbd+unix:///d?socket=%zz"}) {
      BadInputException e = assertThrows(BadInputException.class, () -> NbdUri.parse(bad), bad);
      assertFalse(e.getMessage().contains("\n"), e.getMessage());
      assertTrue(e.getMessage().contains(bad.substring(0, 5)), e.getMessage());
    }
  }

  @Test
  void knowsNbdSchemesOnly() {
    assertTrue(NbdUri.isNbd("NBD://h/x"));
    assertTrue(NbdUri.isNbd("nbd+unix:///x?socket=/s"));
    assertFalse(NbdUri.isNbd("/dev/sdb"));
    assertFalse(NbdUri.isNbd("file:///dev/sdb"));
  }
}
