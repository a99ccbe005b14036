package io.zcow.metrics;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * Serves the one registry of a process to Prometheus: {@code /metrics} (also {@code HEAD}, and
 * the OpenMetrics and protobuf formats a scraper asks for), {@code /-/healthy}, from the Prometheus
 * Java client's HTTP exporter on every interface. Every role of the process registers its meters in
 * the same {@link PrometheusMeterRegistry}, so one port shows them all.
 *
 * <p>Names follow one scheme: {@code zcow.<role>.<what>[.<unit>]} in Micrometer's dotted form,
 * exposed as {@code zcow_<role>_<what>[_<unit>]}, counters with {@code _total}.
 */
public final class MetricsEndpoint implements Closeable {
  private final HTTPServer server;

  private MetricsEndpoint(HTTPServer server) {
    this.server = server;
  }

  /**
   * Starts serving {@code registry} on {@code port}; 0 picks a free port ({@link #port()} tells which).
   *
   * @throws UncheckedIOException when the port cannot be bound, with the reason
   */
  public static MetricsEndpoint serve(int port, PrometheusMeterRegistry registry) {
    try {
      return new MetricsEndpoint(HTTPServer.builder().port(port).registry(registry.getPrometheusRegistry())
          .buildAndStart());
    } catch (IOException e) {
      throw new UncheckedIOException("metrics port " + port + " cannot be bound: " + e.getMessage(), e);
    }
  }

  public int port() {
    return server.getPort();
  }

  @Override
  public void close() {
    server.close();
  }
}
