package io.zcow.source.nbd;

import io.zcow.BadInputException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;

/** Opens the connection an {@link NbdUri} names; failures say where and why in one line. */
final class Transports {
  private Transports() {}

  /**
   * Connects within the options' connect timeout: a channel for plain TCP and Unix sockets, a
   * socket for TLS (which JSSE layers on after NBD_OPT_STARTTLS).
   *
   * @throws BadInputException when nothing listens there, the host is unknown, or the connect times out
   */
  static Transport connect(NbdUri uri, NbdOptions options) {
    if (uri.isUnix()) {
      return unix(uri);
    }
    InetSocketAddress address = new InetSocketAddress(uri.host(), uri.port());
    if (address.isUnresolved()) {
      throw new BadInputException("cannot connect to " + uri.describe() + ": host " + uri.host() + " is unknown");
    }
    int timeout = (int) Math.min(Integer.MAX_VALUE, options.connectTimeout().toMillis());
    Socket socket = null;
    SocketChannel channel = null;
    try {
      if (uri.tls() || options.tls() != null) {
        socket = new Socket();
        socket.connect(address, timeout);
        socket.setTcpNoDelay(true);
        return new SocketTransport(socket);
      }
      channel = SocketChannel.open();
      channel.socket().connect(address, timeout);
      channel.socket().setTcpNoDelay(true);
      return new ChannelTransport(channel);
    } catch (SocketTimeoutException e) {
      closeQuietly(socket, channel);
      throw new BadInputException("cannot connect to " + uri.describe() + ": no answer within "
          + options.connectTimeout().toMillis() + " ms (a firewall dropping packets?)", e);
    } catch (IOException e) {
      closeQuietly(socket, channel);
      throw new BadInputException("cannot connect to " + uri.describe() + ": " + e.getMessage(), e);
    }
  }

  private static Transport unix(NbdUri uri) {
    if (!Files.exists(uri.socket())) {
      throw new BadInputException("cannot connect to " + uri.describe() + ": socket " + uri.socket() + " does not exist");
    }
    SocketChannel channel = null;
    try {
      channel = SocketChannel.open(StandardProtocolFamily.UNIX);
      channel.connect(UnixDomainSocketAddress.of(uri.socket()));
      return new ChannelTransport(channel);
    } catch (IOException e) {
      closeQuietly(null, channel);
      throw new BadInputException("cannot connect to " + uri.describe() + ": " + e.getMessage(), e);
    }
  }

  private static void closeQuietly(Socket socket, SocketChannel channel) {
    try {
      if (socket != null) {
        socket.close();
      }
      if (channel != null) {
        channel.close();
      }
    } catch (IOException ignored) {
      // never used: nothing to lose
    }
  }
}
