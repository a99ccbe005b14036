package io.zcow.cli;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.zcow.BadInputException;
import io.zcow.metrics.MetricsEndpoint;
import java.io.UncheckedIOException;
import picocli.CommandLine.Option;

/** {@code --metrics-port}: where a long-running role serves its process's one registry to Prometheus. */
final class MetricsOptions {
  @Option(names = "--metrics-port", paramLabel = "P", description = "Serve Prometheus metrics at http://HOST:P/metrics (0: a free port, logged). Default: no metrics server.")
  Integer metricsPort;

  /** Serves {@code registry} on the port, or returns null when no port was given. */
  MetricsEndpoint serve(PrometheusMeterRegistry registry) {
    if (metricsPort == null) {
      return null;
    }
    if (metricsPort < 0 || metricsPort > 65535) {
      throw new BadInputException("--metrics-port must be 0 to 65535: " + metricsPort);
    }
    try {
      return MetricsEndpoint.serve(metricsPort, registry);
    } catch (UncheckedIOException e) {
      throw new BadInputException("--metrics-port " + metricsPort + " cannot be used: " + e.getCause().getMessage(), e);
    }
  }
}
