package io.zcow.cli.embedded;

import io.zcow.BadInputException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;

/**
 * An address to listen on. Port 0 means "any free port", chosen by {@link #resolvePort()}.
 *
 * @param host a host name or IP literal (IPv6 without brackets)
 * @param port 0 to 65535
 */
public record HostPort(String host, int port) {
  /** The default of every embedded server: loopback, so nothing is exposed unless asked. */
  public static final String LOOPBACK = "127.0.0.1";

  public HostPort {
    if (host == null || host.isBlank()) {
      throw new BadInputException("listen address needs a host: '" + host + "'");
    }
    if (port < 0 || port > 65535) {
      throw new BadInputException("port must be 0 to 65535: " + port);
    }
  }

  /** Loopback on a port chosen when the server starts. */
  public static HostPort loopbackAnyPort() {
    return new HostPort(LOOPBACK, 0);
  }

  /**
   * Parses {@code HOST:PORT}, {@code [IPV6]:PORT} or {@code :PORT} (loopback).
   *
   * @throws BadInputException naming the value when it is not of that form
   */
  public static HostPort parse(String value) {
    int colon = value.lastIndexOf(':');
    if (colon < 0) {
      throw new BadInputException("expected HOST:PORT, got '" + value + "'");
    }
    String host = value.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    if (host.isEmpty()) {
      host = LOOPBACK;
    }
    int port;
    try {
      port = Integer.parseInt(value.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new BadInputException("expected HOST:PORT with a numeric port, got '" + value + "'");
    }
    return new HostPort(host, port);
  }

  /**
   * This address with a free port in place of 0. The port is free when this returns; another
   * process could take it before the server binds it, which the server then reports as a bind
   * failure.
   */
  public HostPort resolvePort() {
    if (port != 0) {
      return this;
    }
    try (ServerSocket s = new ServerSocket()) {
      s.setReuseAddress(true);
      s.bind(new InetSocketAddress(InetAddress.getByName(host), 0), 1);
      return new HostPort(host, s.getLocalPort());
    } catch (IOException e) {
      throw new UncheckedIOException("no free port on " + host + ": " + e.getMessage(), e);
    }
  }

  /**
   * Fails at once when this address cannot be bound (port in use, address not of this host),
   * for servers that would otherwise only report it through their log and a start timeout.
   */
  public void checkBindable() {
    try (ServerSocket s = new ServerSocket()) {
      s.setReuseAddress(true);
      s.bind(new InetSocketAddress(InetAddress.getByName(host), port), 1);
    } catch (IOException e) {
      throw new IllegalStateException("cannot listen on " + this + ": " + e.getMessage(), e);
    }
  }

  /** True for 0.0.0.0 and ::, which clients cannot connect to. */
  public boolean isWildcard() {
    try {
      return InetAddress.getByName(host).isAnyLocalAddress();
    } catch (IOException e) {
      return false;
    }
  }

  /** The address for clients: a wildcard host is replaced by this machine's name. */
  public HostPort advertised() {
    if (!isWildcard()) {
      return this;
    }
    try {
      return new HostPort(InetAddress.getLocalHost().getCanonicalHostName(), port);
    } catch (IOException e) {
      return new HostPort(LOOPBACK, port);
    }
  }

  @Override
  public String toString() {
    return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
  }
}
