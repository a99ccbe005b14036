package io.zcow.testkit;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A real NBD server ({@code qemu-nbd} or {@code nbdkit}) started by a test, daemonised by the
 * server itself once it listens (so a test never races its start-up), and killed by {@link
 * #close()}. Read-only exports only: a backup never writes its source.
 *
 * <p>Without the tool the calling test is skipped, or fails when {@code CI=true} (the packages
 * qemu-utils and nbdkit must be installed there).
 */
public final class NbdServer implements AutoCloseable {
  private final long pid;
  private final String uri;
  private final int port;

  private NbdServer(long pid, String uri, int port) {
    this.pid = pid;
    this.uri = uri;
    this.port = port;
  }

  /** How to start qemu-nbd. */
  public static Builder qemuNbd(Path image, String format) {
    return new Builder(true, image, format);
  }

  /** How to start nbdkit's file plugin (no block sizes, no holes in reads). */
  public static Builder nbdkit(Path file) {
    return new Builder(false, file, "raw");
  }

  /** The export's URI: {@code nbd://127.0.0.1:PORT/EXPORT}, nbds:// with TLS, or nbd+unix. */
  public String uri() {
    return uri;
  }

  /** The TCP port; 0 over a Unix socket. */
  public int port() {
    return port;
  }

  /** Kills the server and waits for it to go. */
  @Override
  public void close() {
    Optional<ProcessHandle> h = ProcessHandle.of(pid);
    if (h.isEmpty()) {
      return;
    }
    h.get().destroy();
    try {
      h.get().onExit().get(10, java.util.concurrent.TimeUnit.SECONDS);
    } catch (Exception e) {
      h.get().destroyForcibly();
    }
  }

  /** Options of a server to start; {@link #start()} starts it. */
  public static final class Builder {
    private final boolean qemu;
    private final Path image;
    private final String format;
    private String export = "disk";
    private Path socket;
    private int shared = 8;
    private Path tlsDir;
    private boolean verifyPeer = true;
    private String bitmap;

    private Builder(boolean qemu, Path image, String format) {
      this.qemu = qemu;
      this.image = image;
      this.format = format;
    }

    public Builder export(String name) {
      this.export = name;
      return this;
    }

    /** Listen on this Unix socket instead of a free TCP port on 127.0.0.1. */
    public Builder unix(Path socketPath) {
      this.socket = socketPath;
      return this;
    }

    /** Clients served at once (qemu-nbd -e N); 1 is qemu-nbd's own default. */
    public Builder shared(int clients) {
      this.shared = clients;
      return this;
    }

    /** TLS with the PKI directory of {@link TestPki} (qemu-nbd only); client certificates checked unless told not. */
    public Builder tls(Path pkiDir, boolean verifyClients) {
      this.tlsDir = pkiDir;
      this.verifyPeer = verifyClients;
      return this;
    }

    /** Export the image's persistent dirty bitmap NAME as meta context qemu:dirty-bitmap:NAME (qemu-nbd -B). */
    public Builder bitmap(String name) {
      this.bitmap = name;
      return this;
    }

    public NbdServer start() {
      Path tool = qemu ? Tools.require("qemu-nbd", "qemu-utils") : Tools.require("nbdkit", "nbdkit");
      try {
        Path pidFile = Files.createTempFile("zcow-nbd-", ".pid");
        Files.delete(pidFile); // the server writes it once it listens
        int port = socket == null ? freePort() : 0;
        List<String> cmd = new ArrayList<>(List.of(tool.toString()));
        if (qemu) {
          cmd.addAll(List.of("-r", "-t", "-f", format, "-x", export, "-e", Integer.toString(shared), "--fork",
              "--pid-file", pidFile.toString()));
          if (bitmap != null) {
            cmd.addAll(List.of("-B", bitmap));
          }
          if (tlsDir != null) {
            cmd.addAll(List.of("--object", "tls-creds-x509,id=tls0,dir=" + tlsDir + ",endpoint=server,verify-peer="
                + (verifyPeer ? "on" : "off"), "--tls-creds", "tls0"));
          }
          cmd.addAll(socket != null ? List.of("-k", socket.toString())
              : List.of("-b", "127.0.0.1", "-p", Integer.toString(port)));
          cmd.add(image.toString());
        } else {
          cmd.addAll(List.of("-r", "-P", pidFile.toString(), "-e", export));
          cmd.addAll(socket != null ? List.of("-U", socket.toString())
              : List.of("-i", "127.0.0.1", "-p", Integer.toString(port)));
          cmd.addAll(List.of("file", "file=" + image));
        }
        Tools.Result r = Tools.run(cmd, Duration.ofSeconds(30));
        if (r.exitCode() != 0) {
          throw new IllegalStateException(r.describe());
        }
        long pid = waitForPid(pidFile);
        Files.deleteIfExists(pidFile);
        return new NbdServer(pid, uri(port), port);
      } catch (IOException e) {
        throw new IllegalStateException("cannot start " + tool + ": " + e.getMessage(), e);
      }
    }

    private String uri(int port) {
      try {
        if (socket != null) {
          return new URI("nbd+unix", "", "/" + export, "socket=" + socket, null).toString();
        }
        return new URI(tlsDir != null ? "nbds" : "nbd", null, "127.0.0.1", port, "/" + export, null, null).toString();
      } catch (URISyntaxException e) {
        throw new IllegalStateException(e);
      }
    }

    private static long waitForPid(Path pidFile) throws IOException {
      long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
      while (System.nanoTime() < deadline) {
        if (Files.exists(pidFile)) {
          String s = Files.readString(pidFile).trim();
          if (!s.isEmpty()) {
            return Long.parseLong(s);
          }
        }
        try {
          Thread.sleep(20);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException("interrupted", e);
        }
      }
      throw new IllegalStateException("the NBD server wrote no pid file " + pidFile + " within 10 s");
    }
  }

  /** A TCP port free at the time of asking (a test server binds it moments later). */
  public static int freePort() {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    } catch (IOException e) {
      throw new IllegalStateException("no free port: " + e.getMessage(), e);
    }
  }
}
