package io.zcow.worker.kafka;

import io.zcow.BadInputException;
import io.zcow.source.SourceLocation;
import io.zcow.source.nbd.NbdUri;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Which sources this worker may read: a task's source must resolve, symbolic links and {@code ..}
 * followed, to a file that is or lies under one of the allowed prefixes. Prefixes are whole path
 * components ({@code /dev/sd} does not allow {@code /dev/sdb}; {@code /dev} does). No prefix at
 * all allows every local source.
 *
 * <p>NBD exports are network sources: a worker reads one only when an allowed export names it,
 * compared on the parsed URI — host (case aside), port and export name, or Unix socket and export
 * name — never on the text, so {@code nbd://nas/disk} does not allow {@code nbd://nas/disk2} or
 * {@code nbd://nas.evil/disk}. TLS or not is the URI's business, not the policy's.
 *
 * <p>The answer tells a worker what to do with the task: {@link Verdict.Readable} (work on it),
 * {@link Verdict.NotHere} (release it: another host may see or be allowed to read it) or {@link
 * Verdict.Invalid} (reject it: no worker anywhere can make sense of it). Thread safe.
 */
public final class SourcePolicy {
  private final List<Path> allowed;
  private final List<NbdUri> exports;
  private final boolean anyLocal; // no prefix given and not told to refuse: today's "everything"

  /** What a worker should do with a task's source. */
  public sealed interface Verdict {
    record Readable(SourceLocation location) implements Verdict {}

    record NotHere(String reason) implements Verdict {}

    record Invalid(String reason) implements Verdict {}
  }

  private SourcePolicy(List<Path> allowed, List<NbdUri> exports) {
    this(allowed, exports, allowed.isEmpty());
  }

  private SourcePolicy(List<Path> allowed, List<NbdUri> exports, boolean anyLocal) {
    this.allowed = List.copyOf(allowed);
    this.exports = List.copyOf(exports);
    this.anyLocal = anyLocal;
  }

  /**
   * Allows local sources under {@code prefixes} only (none when empty: every file and device is
   * refused) and the NBD exports {@code nbdExports}. The secure default of a worker.
   */
  public static SourcePolicy allowingOnly(List<Path> prefixes, List<NbdUri> nbdExports) {
    return new SourcePolicy(allowing(prefixes).allowed, nbdExports, false);
  }

  /** Allows every local source this host can open, and no NBD export. */
  public static SourcePolicy allowAll() {
    return new SourcePolicy(List.of(), List.of());
  }

  /** {@link #allowAll()} plus these NBD exports (the embedded cluster allows its own job's source). */
  public static SourcePolicy allowAllAnd(List<NbdUri> nbdExports) {
    return new SourcePolicy(List.of(), nbdExports);
  }

  /**
   * Allows local sources under {@code prefixes} and the NBD exports {@code nbdExports}; with no
   * prefix every local source is allowed, as {@link #allowAll()}.
   */
  public static SourcePolicy allowing(List<Path> prefixes, List<NbdUri> nbdExports) {
    return new SourcePolicy(allowing(prefixes).allowed, nbdExports);
  }

  /**
   * Allows sources under {@code prefixes} (absolute paths). A prefix that exists is taken by its
   * real path, so a link to a directory allows what the link points to.
   *
   * @throws IllegalArgumentException when a prefix is not absolute
   */
  public static SourcePolicy allowing(List<Path> prefixes) {
    List<Path> real = new ArrayList<>();
    for (Path p : prefixes) {
      if (!p.isAbsolute()) {
        throw new IllegalArgumentException("allowed source prefix must be an absolute path: " + p);
      }
      real.add(realOrNormal(p.normalize()));
    }
    return new SourcePolicy(real, List.of());
  }

  public List<Path> allowed() {
    return allowed;
  }

  public List<NbdUri> exports() {
    return exports;
  }

  public boolean allowsAll() {
    return anyLocal;
  }

  /**
   * Judges a JobSpec's source_uri: a {@code file:} URI, a plain absolute path, or an NBD URI.
   */
  public Verdict judge(String sourceUri) {
    if (sourceUri == null || sourceUri.isBlank()) {
      return new Verdict.Invalid("the job has no source");
    }
    if (NbdUri.isNbd(sourceUri)) {
      return judgeNbd(sourceUri);
    }
    Path path;
    try {
      path = toPath(sourceUri);
    } catch (UnsupportedScheme e) {
      return new Verdict.NotHere(e.getMessage());
    } catch (IllegalArgumentException e) {
      return new Verdict.Invalid("source " + sourceUri + " is not a usable path: " + e.getMessage());
    }
    if (!path.isAbsolute()) {
      return new Verdict.Invalid("source " + sourceUri + " is not an absolute path");
    }
    Path real;
    try {
      real = path.toRealPath();
    } catch (NoSuchFileException e) {
      return new Verdict.NotHere("source " + path + " does not exist on this host");
    } catch (IOException | SecurityException e) {
      return new Verdict.NotHere("source " + path + " cannot be resolved on this host: " + e.getMessage());
    }
    if (!isAllowed(real)) {
      return new Verdict.NotHere("source " + path + (real.equals(path) ? "" : " (" + real + ")")
          + " is outside this worker's allowed sources "
          + (allowed.isEmpty() ? "(none: allow it with --source-allow DIR)" : allowed.toString()));
    }
    if (!Files.isReadable(real)) {
      return new Verdict.NotHere("source " + path + " is not readable by this worker");
    }
    return new Verdict.Readable(new SourceLocation.LocalFile(real));
  }

  private Verdict judgeNbd(String sourceUri) {
    NbdUri uri;
    try {
      uri = NbdUri.parse(sourceUri);
    } catch (BadInputException e) {
      return new Verdict.Invalid(e.getMessage());
    }
    for (NbdUri allowedExport : exports) {
      if (sameExport(allowedExport, uri)) {
        return new Verdict.Readable(new SourceLocation.NbdExport(uri));
      }
    }
    return new Verdict.NotHere("network source " + uri.describe() + " is not among this worker's allowed NBD exports"
        + (exports.isEmpty() ? " (none: allow it with --source-allow " + uri + ")" : " " + exports));
  }

  /** The same server and export: host names compared as DNS does (case aside), Unix sockets by path. */
  static boolean sameExport(NbdUri a, NbdUri b) {
    if (!a.export().equals(b.export()) || a.isUnix() != b.isUnix()) {
      return false;
    }
    if (a.isUnix()) {
      return realOrNormal(a.socket().toAbsolutePath().normalize()).equals(realOrNormal(b.socket().toAbsolutePath().normalize()));
    }
    return a.port() == b.port() && a.host().toLowerCase(Locale.ROOT).equals(b.host().toLowerCase(Locale.ROOT));
  }

  private boolean isAllowed(Path real) {
    if (anyLocal) {
      return true;
    }
    for (Path prefix : allowed) {
      if (real.startsWith(prefix)) {
        return true;
      }
    }
    return false;
  }

  private static Path toPath(String uri) {
    if (uri.startsWith("/")) {
      return Path.of(uri).normalize();
    }
    int colon = uri.indexOf(':');
    if (colon > 0 && uri.regionMatches(true, 0, "file:", 0, 5)) {
      try {
        URI u = new URI(uri);
        if (u.getHost() != null && !u.getHost().isEmpty() && !u.getHost().equals("localhost")) {
          throw new UnsupportedScheme("source " + uri + " names host " + u.getHost() + ", not this one");
        }
        if (u.getPath() == null) {
          throw new IllegalArgumentException("no path");
        }
        return Path.of(u.getPath()).normalize();
      } catch (URISyntaxException e) {
        throw new IllegalArgumentException(e.getMessage());
      }
    }
    if (colon > 0 && uri.substring(0, colon).matches("[A-Za-z][A-Za-z0-9+.-]*")) {
      throw new UnsupportedScheme("source " + uri + ": scheme " + uri.substring(0, colon) + " is not readable by this worker");
    }
    try {
      return Path.of(uri).normalize();
    } catch (InvalidPathException e) {
      throw new IllegalArgumentException(e.getMessage());
    }
  }

  private static Path realOrNormal(Path p) {
    try {
      return p.toRealPath();
    } catch (IOException e) {
      return p;
    }
  }

  private static final class UnsupportedScheme extends IllegalArgumentException {
    UnsupportedScheme(String message) {
      super(message);
    }
  }

  @Override
  public String toString() {
    return (allowed.isEmpty() ? "all local sources" : "sources under " + allowed)
        + (exports.isEmpty() ? "" : " and NBD exports " + exports);
  }
}
