package io.zcow.source.nbd;

import io.zcow.BadInputException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;

/**
 * Where an NBD export is, as the NBD URI specification (doc/uri.md of the NBD project) writes it:
 * {@code nbd://HOST[:PORT]/EXPORT}, {@code nbds://HOST[:PORT]/EXPORT} (TLS required) or
 * {@code nbd+unix:///EXPORT?socket=PATH}. The export name is the path after its first
 * {@code /}, percent-decoded; the port defaults to 10809.
 *
 * @param tls TLS is required (nbds)
 * @param host the host name or IP literal (IPv6 without brackets); null over a Unix socket
 * @param port the TCP port; 0 over a Unix socket
 * @param socket the Unix socket; null over TCP
 * @param export the export name, possibly empty (the server's default export)
 */
public record NbdUri(boolean tls, String host, int port, Path socket, String export) {
  public static final int DEFAULT_PORT = 10809;

  public NbdUri {
    Objects.requireNonNull(export, "export");
    if ((host == null) == (socket == null)) {
      throw new IllegalArgumentException("exactly one of host and socket must be given: " + host + ", " + socket);
    }
    if (host != null && (host.isEmpty() || port < 1 || port > 65535)) {
      throw new IllegalArgumentException("host must not be empty and port must be 1 to 65535: " + host + ":" + port);
    }
    if (socket != null && tls) {
      throw new IllegalArgumentException("TLS over a Unix socket is not supported: " + socket);
    }
  }

  /** True when {@code s} names an NBD export (by its scheme), whether or not it parses. */
  public static boolean isNbd(String s) {
    String lower = s.toLowerCase(Locale.ROOT);
    return lower.startsWith("nbd://") || lower.startsWith("nbds://") || lower.startsWith("nbd+unix:")
        || lower.startsWith("nbds+unix:");
  }

  /**
   * Parses an NBD URI.
   *
   * @throws BadInputException naming what is wrong: an unknown scheme, no host, a bad port, a Unix
   *     URI without {@code socket=} or with a host, an unknown query parameter, or nbds+unix
   */
  public static NbdUri parse(String s) {
    Objects.requireNonNull(s, "s");
    URI u;
    try {
      u = new URI(s);
    } catch (URISyntaxException e) {
      throw new BadInputException("malformed NBD URI " + s + ": " + e.getMessage());
    }
    String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
    if (u.isOpaque()) {
      throw new BadInputException("malformed NBD URI " + s + ": expected " + scheme + "://...");
    }
    String path = u.getPath() == null ? "" : u.getPath();
    String export = path.startsWith("/") ? path.substring(1) : path;
    if (u.getFragment() != null) {
      throw new BadInputException("malformed NBD URI " + s + ": a fragment (#" + u.getFragment() + ") has no meaning");
    }
    switch (scheme) {
      case "nbd", "nbds" -> {
        if (u.getRawQuery() != null) {
          throw new BadInputException("NBD URI " + s + ": unsupported query parameters " + u.getRawQuery());
        }
        if (u.getHost() == null || u.getHost().isEmpty()) {
          throw new BadInputException("NBD URI " + s + " names no host"
              + (u.getRawAuthority() != null ? " (or an invalid one: " + u.getRawAuthority() + ")" : ""));
        }
        if (u.getUserInfo() != null) {
          throw new BadInputException("NBD URI " + s + ": user names (" + u.getUserInfo() + "@) are not supported");
        }
        String host = u.getHost();
        if (host.startsWith("[") && host.endsWith("]")) {
          host = host.substring(1, host.length() - 1);
        }
        int port = u.getPort() == -1 ? DEFAULT_PORT : u.getPort();
        if (port < 1 || port > 65535) {
          throw new BadInputException("NBD URI " + s + ": port must be 1 to 65535: " + port);
        }
        return new NbdUri(scheme.equals("nbds"), host, port, null, export);
      }
      case "nbd+unix" -> {
        if (u.getRawAuthority() != null && !u.getRawAuthority().isEmpty()) {
          throw new BadInputException("NBD URI " + s + ": a Unix socket URI takes no host (write nbd+unix:///EXPORT?socket=PATH)");
        }
        return new NbdUri(false, null, 0, socketOf(s, u), export);
      }
      case "nbds+unix" -> throw new BadInputException("NBD URI " + s
          + ": TLS over Unix sockets is not supported (the JDK's Unix-socket channels cannot carry JSSE); use nbds://HOST:PORT/EXPORT");
      default -> throw new BadInputException("not an NBD URI: " + s + " (expected nbd://, nbds:// or nbd+unix://)");
    }
  }

  private static Path socketOf(String s, URI u) {
    String query = u.getRawQuery();
    String socket = null;
    if (query != null) {
      for (String param : query.split("&")) {
        int eq = param.indexOf('=');
        String key = eq < 0 ? param : param.substring(0, eq);
        String value = eq < 0 ? "" : decode(s, param.substring(eq + 1));
        if (!key.equals("socket")) {
          throw new BadInputException("NBD URI " + s + ": unsupported query parameter " + key);
        }
        socket = value;
      }
    }
    if (socket == null || socket.isEmpty()) {
      throw new BadInputException("NBD URI " + s + " has no socket: write nbd+unix:///EXPORT?socket=PATH");
    }
    if (socket.charAt(0) == 0) {
      throw new BadInputException("NBD URI " + s + ": abstract Unix sockets are not supported");
    }
    try {
      return Path.of(socket);
    } catch (InvalidPathException e) {
      throw new BadInputException("NBD URI " + s + ": socket " + socket + " is not a path: " + e.getMessage());
    }
  }

  /** Percent-decoding as RFC 3986 has it ('+' stays '+', unlike form encoding). */
  private static String decode(String s, String raw) {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    for (int i = 0; i < raw.length(); i++) {
      char c = raw.charAt(i);
      if (c != '%') {
        out.writeBytes(String.valueOf(c).getBytes(java.nio.charset.StandardCharsets.UTF_8));
        continue;
      }
      if (i + 2 >= raw.length() || Character.digit(raw.charAt(i + 1), 16) < 0 || Character.digit(raw.charAt(i + 2), 16) < 0) {
        throw new BadInputException("malformed NBD URI " + s + ": bad percent escape in " + raw);
      }
      out.write(Integer.parseInt(raw.substring(i + 1, i + 3), 16));
      i += 2;
    }
    return out.toString(java.nio.charset.StandardCharsets.UTF_8);
  }

  /** Over a Unix socket. */
  public boolean isUnix() {
    return socket != null;
  }

  /** "127.0.0.1:10809", "[::1]:10809" or "unix:/run/nbd.sock", for messages and matching. */
  public String address() {
    if (isUnix()) {
      return "unix:" + socket;
    }
    return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
  }

  /** "NBD export 'disk' at 127.0.0.1:10809 (TLS)". */
  public String describe() {
    return "NBD export '" + export + "' at " + address() + (tls ? " (TLS)" : "");
  }

  /** The URI in its canonical form (explicit port, encoded export), as a job records it. */
  @Override
  public String toString() {
    try {
      if (isUnix()) {
        return new URI("nbd+unix", "", "/" + export, "socket=" + socket, null).toString();
      }
      String h = host.indexOf(':') >= 0 ? "[" + host + "]" : host;
      return new URI(tls ? "nbds" : "nbd", null, h, port, "/" + export, null, null).toString();
    } catch (URISyntaxException e) {
      throw new IllegalStateException("cannot write back a parsed NBD URI: " + e.getMessage(), e);
    }
  }
}
