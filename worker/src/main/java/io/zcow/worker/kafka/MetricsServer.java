package io.zcow.worker.kafka;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;

/**
 * Serves a Prometheus registry's scrape in the Prometheus text format at {@code /metrics} (and
 * {@code /}) on a port of all interfaces, from one daemon thread of the JDK's HTTP server.
 */
public final class MetricsServer implements Closeable {
  private static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

  private final HttpServer server;

  private MetricsServer(HttpServer server) {
    this.server = server;
  }

  /**
   * Starts serving; port 0 picks a free port ({@link #port()} tells which).
   *
   * @throws UncheckedIOException when the port cannot be bound
   */
  public static MetricsServer start(int port, PrometheusMeterRegistry registry) {
    HttpServer s;
    try {
      s = HttpServer.create(new InetSocketAddress(port), 0);
    } catch (IOException e) {
      throw new UncheckedIOException("metrics port " + port + " cannot be bound: " + e.getMessage(), e);
    }
    s.createContext("/", exchange -> serve(exchange, registry));
    s.setExecutor(Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "zcow-metrics");
      t.setDaemon(true);
      return t;
    }));
    s.start();
    return new MetricsServer(s);
  }

  private static void serve(HttpExchange exchange, PrometheusMeterRegistry registry) throws IOException {
    try (exchange) {
      String path = exchange.getRequestURI().getPath();
      if (!path.equals("/metrics") && !path.equals("/")) {
        exchange.sendResponseHeaders(404, -1);
        return;
      }
      byte[] body = registry.scrape().getBytes(StandardCharsets.UTF_8);
      exchange.getResponseHeaders().set("Content-Type", CONTENT_TYPE);
      boolean head = exchange.getRequestMethod().equalsIgnoreCase("HEAD");
      exchange.sendResponseHeaders(200, head ? -1 : body.length);
      if (!head) {
        try (OutputStream out = exchange.getResponseBody()) {
          out.write(body);
        }
      }
    }
  }

  public int port() {
    return server.getAddress().getPort();
  }

  @Override
  public void close() {
    server.stop(0);
  }
}
