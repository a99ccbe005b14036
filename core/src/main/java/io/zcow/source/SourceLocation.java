package io.zcow.source;

import io.zcow.source.nbd.NbdUri;
import java.nio.file.Path;
import java.util.Objects;

/** Where a source is: a local file or device, or an NBD export. Parsed from text by {@link Sources#parse}. */
public sealed interface SourceLocation {

  /** The URI a job records for it: {@code file:///…} or the canonical NBD URI. */
  String uri();

  /** A regular file or block device on this host. */
  record LocalFile(Path path) implements SourceLocation {
    public LocalFile {
      Objects.requireNonNull(path, "path");
    }

    @Override
    public String uri() {
      return path.toAbsolutePath().toUri().toString();
    }

    @Override
    public String toString() {
      return path.toString();
    }
  }

  /** An NBD export, reachable from any host that can connect to it. */
  record NbdExport(NbdUri nbd) implements SourceLocation {
    public NbdExport {
      Objects.requireNonNull(nbd, "nbd");
    }

    @Override
    public String uri() {
      return nbd.toString();
    }

    @Override
    public String toString() {
      return nbd.toString();
    }
  }
}
