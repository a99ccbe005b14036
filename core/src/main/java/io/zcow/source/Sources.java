package io.zcow.source;

import io.zcow.BadInputException;
import io.zcow.source.nbd.NbdOptions;
import io.zcow.source.nbd.NbdSource;
import io.zcow.source.nbd.NbdUri;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * The one place that turns what a user or a job wrote into a {@link Source}: an NBD URI
 * ({@code nbd://}, {@code nbds://}, {@code nbd+unix://}), a {@code file:} URI, or a plain path.
 */
public final class Sources {
  private static final Pattern SCHEME = Pattern.compile("[A-Za-z][A-Za-z0-9+.-]*://.*");

  private Sources() {}

  /**
   * Parses a source's text.
   *
   * @throws BadInputException a malformed NBD URI, a {@code file:} URI naming another host, an
   *     unknown scheme, or text that is no path
   */
  public static SourceLocation parse(String text) {
    Objects.requireNonNull(text, "text");
    if (text.isEmpty()) {
      throw new BadInputException("the source is empty");
    }
    if (NbdUri.isNbd(text)) {
      return new SourceLocation.NbdExport(NbdUri.parse(text));
    }
    if (text.toLowerCase(Locale.ROOT).startsWith("file:")) {
      return new SourceLocation.LocalFile(fileUri(text));
    }
    if (SCHEME.matcher(text).matches()) {
      throw new BadInputException("source " + text + ": unknown scheme " + text.substring(0, text.indexOf(':'))
          + " (a path, file:, nbd://, nbds:// or nbd+unix://)");
    }
    try {
      return new SourceLocation.LocalFile(Path.of(text));
    } catch (InvalidPathException e) {
      throw new BadInputException("source " + text + " is not a path: " + e.getMessage());
    }
  }

  private static Path fileUri(String text) {
    try {
      URI u = new URI(text);
      if (u.getHost() != null && !u.getHost().isEmpty() && !u.getHost().equals("localhost")) {
        throw new BadInputException("source " + text + " names host " + u.getHost() + ", not this one");
      }
      if (u.getPath() == null || u.getPath().isEmpty()) {
        throw new BadInputException("source " + text + " has no path");
      }
      return Path.of(u.getPath());
    } catch (URISyntaxException | InvalidPathException e) {
      throw new BadInputException("source " + text + " is not a usable file URI: " + e.getMessage());
    }
  }

  /** Parses and opens; see {@link #parse} and {@link #open(SourceLocation, SourceCache, NbdOptions)}. */
  public static Source open(String text, SourceCache cache, NbdOptions nbd) {
    return open(parse(text), cache, nbd);
  }

  /**
   * Opens a source. {@code cache} applies to local files (NBD exports are read through the
   * server, whose own cache mode is its business); {@code nbd} to NBD exports.
   *
   * @throws BadInputException see {@link FileSource#open} and {@link NbdSource#open}
   */
  public static Source open(SourceLocation location, SourceCache cache, NbdOptions nbd) {
    Objects.requireNonNull(location, "location");
    if (location instanceof SourceLocation.NbdExport e) {
      return NbdSource.open(e.nbd(), Objects.requireNonNull(nbd, "nbd"));
    }
    return FileSource.open(((SourceLocation.LocalFile) location).path(), cache);
  }
}
