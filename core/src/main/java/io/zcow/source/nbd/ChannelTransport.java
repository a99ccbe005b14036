package io.zcow.source.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import javax.net.ssl.SSLContext;

/**
 * A plain TCP or Unix-socket connection read and written as a channel, so that read replies land
 * straight in the caller's (direct) buffer. Blocking channels allow one reader and one writer at
 * once, which is what {@link Transport} promises.
 */
final class ChannelTransport implements Transport {
  private final SocketChannel channel;

  ChannelTransport(SocketChannel channel) {
    this.channel = channel;
  }

  @Override
  public void readFully(ByteBuffer dst) throws IOException {
    while (dst.hasRemaining()) {
      if (channel.read(dst) < 0) {
        throw new EOFException("the server closed the connection");
      }
    }
  }

  @Override
  public int readSome(ByteBuffer dst) throws IOException {
    int n;
    do {
      n = channel.read(dst);
    } while (n == 0);
    if (n < 0) {
      throw new EOFException("the server closed the connection");
    }
    return n;
  }

  @Override
  public void write(ByteBuffer src) throws IOException {
    while (src.hasRemaining()) {
      channel.write(src);
    }
  }

  @Override
  public Transport startTls(SSLContext context, String host, int port) {
    // The TLS path connects with a java.net.Socket from the start (see Transports.connect).
    throw new IllegalStateException("TLS needs a socket transport");
  }

  @Override
  public void close() {
    try {
      channel.close();
    } catch (IOException ignored) {
      // nothing was written that a failed close could lose
    }
  }
}
