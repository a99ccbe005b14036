package io.zcow.source.nbd;

import java.time.Duration;

/**
 * How NBD exports are reached and read.
 *
 * @param connectTimeout how long a TCP connect may take
 * @param handshakeTimeout how long the server may take to greet and to answer the options (a
 *     qemu-nbd without {@code -e N} accepts a second client but greets it only when the first leaves)
 * @param requestTimeout how long one read or block-status request may wait for its reply
 * @param connections connections one source opens at most (one per thread reading at once)
 * @param requestsInFlight requests one read sends before awaiting replies, per connection
 * @param requestSize bytes per read request; lowered to the server's maximum payload
 * @param tls credentials for {@code nbds://} (and for servers that demand TLS); null for none
 */
public record NbdOptions(Duration connectTimeout, Duration handshakeTimeout, Duration requestTimeout,
    int connections, int requestsInFlight, int requestSize, NbdTls tls) {

  public static final int MAX_CONNECTIONS = 256;
  public static final int MAX_IN_FLIGHT = 1024;

  public NbdOptions {
    positive("connectTimeout", connectTimeout);
    positive("handshakeTimeout", handshakeTimeout);
    positive("requestTimeout", requestTimeout);
    if (connections < 1 || connections > MAX_CONNECTIONS) {
      throw new IllegalArgumentException("connections must be 1 to " + MAX_CONNECTIONS + ": " + connections);
    }
    if (requestsInFlight < 1 || requestsInFlight > MAX_IN_FLIGHT) {
      throw new IllegalArgumentException("requestsInFlight must be 1 to " + MAX_IN_FLIGHT + ": " + requestsInFlight);
    }
    if (requestSize < 4096 || requestSize > Nbd.DEFAULT_MAX_PAYLOAD || Integer.bitCount(requestSize) != 1) {
      throw new IllegalArgumentException("requestSize must be a power of two from 4096 to 32 MiB: " + requestSize);
    }
  }

  private static void positive(String name, Duration d) {
    if (d == null || d.isNegative() || d.isZero()) {
      throw new IllegalArgumentException(name + " must be positive: " + d);
    }
  }

  /**
   * 10 s to connect and to negotiate, 60 s per request, up to 16 connections, 4 requests of 1 MiB
   * in flight per connection (a 4 MiB read of the compressor in one round trip), no TLS.
   */
  public static NbdOptions defaults() {
    return new NbdOptions(Duration.ofSeconds(10), Duration.ofSeconds(10), Duration.ofSeconds(60), 16, 4, 1 << 20, null);
  }

  public NbdOptions withTls(NbdTls t) {
    return new NbdOptions(connectTimeout, handshakeTimeout, requestTimeout, connections, requestsInFlight, requestSize, t);
  }

  public NbdOptions withTimeouts(Duration connect, Duration handshake, Duration request) {
    return new NbdOptions(connect, handshake, request, connections, requestsInFlight, requestSize, tls);
  }

  public NbdOptions withRequests(int inFlight, int size) {
    return new NbdOptions(connectTimeout, handshakeTimeout, requestTimeout, connections, inFlight, size, tls);
  }

  public NbdOptions withConnections(int n) {
    return new NbdOptions(connectTimeout, handshakeTimeout, requestTimeout, n, requestsInFlight, requestSize, tls);
  }
}
