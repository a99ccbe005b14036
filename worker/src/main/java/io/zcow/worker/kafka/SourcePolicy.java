package io.zcow.worker.kafka;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Which sources this worker may read: a task's source must resolve, symbolic links and {@code ..}
 * followed, to a file that is or lies under one of the allowed prefixes. Prefixes are whole path
 * components ({@code /dev/sd} does not allow {@code /dev/sdb}; {@code /dev} does). No prefix at
 * all allows every source.
 *
 * <p>The answer tells a worker what to do with the task: {@link Verdict.Readable} (work on it),
 * {@link Verdict.NotHere} (release it: another host may see or be allowed to read it) or {@link
 * Verdict.Invalid} (reject it: no worker anywhere can make sense of it). Thread safe.
 */
public final class SourcePolicy {
  private final List<Path> allowed;

  /** What a worker should do with a task's source. */
  public sealed interface Verdict {
    record Readable(Path path) implements Verdict {}

    record NotHere(String reason) implements Verdict {}

    record Invalid(String reason) implements Verdict {}
  }

  private SourcePolicy(List<Path> allowed) {
    this.allowed = List.copyOf(allowed);
  }

  /** Allows every source this host can open. */
  public static SourcePolicy allowAll() {
    return new SourcePolicy(List.of());
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
    return new SourcePolicy(real);
  }

  public List<Path> allowed() {
    return allowed;
  }

  public boolean allowsAll() {
    return allowed.isEmpty();
  }

  /**
   * Judges a JobSpec's source_uri: a {@code file:} URI or a plain absolute path.
   */
  public Verdict judge(String sourceUri) {
    if (sourceUri == null || sourceUri.isBlank()) {
      return new Verdict.Invalid("the job has no source");
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
          + " is outside this worker's allowed sources " + allowed);
    }
    if (!Files.isReadable(real)) {
      return new Verdict.NotHere("source " + path + " is not readable by this worker");
    }
    return new Verdict.Readable(real);
  }

  private boolean isAllowed(Path real) {
    if (allowed.isEmpty()) {
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
    return allowed.isEmpty() ? "all sources" : "sources under " + allowed;
  }
}
