package io.zcow.source.nbd;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import javax.net.ssl.SSLContext;

/**
 * A byte stream to an NBD server. One thread may read while another writes; reads never run
 * concurrently with reads, nor writes with writes. {@link #close()} unblocks both.
 */
interface Transport extends Closeable {

  /** Fills {@code dst} from its position to its limit; {@link java.io.EOFException} when the server closes. */
  void readFully(ByteBuffer dst) throws IOException;

  /**
   * Reads at least one byte into {@code dst} (which has room), as many as are at hand: the way a
   * small buffer takes a reply's header and what follows it in one system call.
   *
   * @return the bytes read, at least 1
   * @throws java.io.EOFException when the server closed the connection
   */
  int readSome(ByteBuffer dst) throws IOException;

  /** Writes {@code src} from its position to its limit. */
  void write(ByteBuffer src) throws IOException;

  /**
   * Continues over TLS after the server acknowledged NBD_OPT_STARTTLS: handshakes as a client and
   * verifies the server's certificate for {@code host}.
   *
   * @return the transport to use from now on (this one must no longer be used, nor closed apart)
   */
  Transport startTls(SSLContext context, String host, int port) throws IOException;

  /** Closes the connection; never throws. */
  @Override
  void close();
}
