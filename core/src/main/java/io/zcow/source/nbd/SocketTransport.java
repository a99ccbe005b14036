package io.zcow.source.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import java.util.List;

/**
 * A TCP connection through {@link Socket} streams: the form JSSE can layer TLS on after
 * NBD_OPT_STARTTLS. Costs a copy per read into a direct buffer, which TLS decryption costs anyway.
 */
final class SocketTransport implements Transport {
  private static final int COPY_CHUNK = 256 << 10;

  private final Socket socket;
  private final InputStream in;
  private final OutputStream out;
  private final byte[] readCopy = new byte[COPY_CHUNK]; // owned by the reading thread
  private final byte[] writeCopy = new byte[4096]; // owned by the writing thread

  SocketTransport(Socket socket) throws IOException {
    this.socket = socket;
    this.in = socket.getInputStream();
    this.out = socket.getOutputStream();
  }

  @Override
  public void readFully(ByteBuffer dst) throws IOException {
    while (dst.hasRemaining()) {
      readSome(dst);
    }
  }

  @Override
  public int readSome(ByteBuffer dst) throws IOException {
    int n;
    if (dst.hasArray()) {
      n = in.read(dst.array(), dst.arrayOffset() + dst.position(), dst.remaining());
      if (n > 0) {
        dst.position(dst.position() + n);
      }
    } else {
      n = in.read(readCopy, 0, Math.min(readCopy.length, dst.remaining()));
      if (n > 0) {
        dst.put(readCopy, 0, n);
      }
    }
    if (n < 0) {
      throw new EOFException("the server closed the connection");
    }
    return n;
  }

  @Override
  public void write(ByteBuffer src) throws IOException {
    if (src.hasArray()) {
      out.write(src.array(), src.arrayOffset() + src.position(), src.remaining());
      src.position(src.limit());
    } else {
      while (src.hasRemaining()) {
        int n = Math.min(writeCopy.length, src.remaining());
        src.get(writeCopy, 0, n);
        out.write(writeCopy, 0, n);
      }
    }
    out.flush();
  }

  @Override
  public Transport startTls(SSLContext context, String host, int port) throws IOException {
    SSLSocket tls = (SSLSocket) context.getSocketFactory().createSocket(socket, host, port, true);
    tls.setUseClientMode(true);
    SSLParameters p = tls.getSSLParameters();
    // Verify that the certificate names the host we asked for, as HTTPS clients do.
    p.setEndpointIdentificationAlgorithm("HTTPS");
    if (!host.isEmpty() && Character.isLetter(host.charAt(0))) {
      p.setServerNames(List.of(new SNIHostName(host)));
    }
    tls.setSSLParameters(p);
    tls.startHandshake();
    return new SocketTransport(tls);
  }

  @Override
  public void close() {
    try {
      socket.close();
    } catch (IOException ignored) {
      // nothing was written that a failed close could lose
    }
  }
}
