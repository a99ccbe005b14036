package io.zcow.source.nbd;

import io.zcow.RetriableException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The connections of one {@link NbdSource}: a reading thread borrows one for a whole read and
 * gives it back, so each thread reading at once has a connection of its own, and connections are
 * opened only as threads need them, up to a limit.
 *
 * <p>A connection left idle for {@link #IDLE_CLOSE} is closed: a source opened to probe an export
 * (its size, its holes) and then kept must not hold a slot of a server that serves few clients
 * at once while workers connect.
 *
 * <p>When another connection cannot be opened while some are open already (qemu-nbd without
 * {@code -e N} greets only one client at a time), the limit drops to what is open and threads
 * share those. A broken connection is closed on return and replaced on demand. Thread safe.
 */
final class ConnectionPool implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(ConnectionPool.class);
  static final java.time.Duration IDLE_CLOSE = java.time.Duration.ofSeconds(3);

  private record Idle(NbdConnection connection, long since) {}

  private final NbdUri uri;
  private final NbdOptions options;
  private final Deque<Idle> idle = new ArrayDeque<>(); // guarded by this; the most recently used first
  private int open; // guarded by this: idle and lent
  private int limit; // guarded by this
  private boolean closed; // guarded by this

  ConnectionPool(NbdUri uri, NbdOptions options, NbdConnection first, int limit) {
    this.uri = uri;
    this.options = options;
    this.limit = limit;
    this.open = 1;
    this.idle.push(new Idle(first, System.nanoTime()));
    Watchdog.later(IDLE_CLOSE, this::closeIdle);
  }

  /** An idle connection, a new one, or (at the limit) the next one given back. */
  NbdConnection borrow() {
    while (true) {
      synchronized (this) {
        while (true) {
          if (closed) {
            throw new IllegalStateException(uri.describe() + " is closed");
          }
          if (!idle.isEmpty()) {
            return idle.pop().connection();
          }
          if (open < limit) {
            open++;
            break;
          }
          try {
            wait();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException(uri.describe() + ": interrupted while waiting for a connection", e);
          }
        }
      }
      try {
        return NbdConnection.open(uri, options);
      } catch (RuntimeException e) {
        synchronized (this) {
          open--;
          notifyAll();
          if (open == 0 || closed) {
            throw e;
          }
          if (limit > open) {
            limit = open;
            LOG.warn("{}: another connection failed ({}); reading over {} connection(s) (export with qemu-nbd -e N"
                + " for more)", uri.describe(), e.getMessage(), open);
          }
        }
        // at the lowered limit: wait for a connection to come back
      }
    }
  }

  /** Takes a connection back; a broken one is closed and forgotten. */
  void giveBack(NbdConnection c) {
    boolean keep;
    synchronized (this) {
      keep = !closed && !c.isBroken();
      if (keep) {
        idle.push(new Idle(c, System.nanoTime()));
      } else {
        open--;
      }
      notifyAll();
    }
    if (!keep) {
      c.close();
    } else {
      Watchdog.later(IDLE_CLOSE, this::closeIdle);
    }
  }

  /** Closes the connections idle for {@link #IDLE_CLOSE} or longer (the oldest sit at the end). */
  private void closeIdle() {
    List<NbdConnection> toClose = new ArrayList<>();
    synchronized (this) {
      long now = System.nanoTime();
      while (!idle.isEmpty() && now - idle.peekLast().since() >= IDLE_CLOSE.toNanos()) {
        toClose.add(idle.pollLast().connection());
        open--;
      }
      if (!toClose.isEmpty()) {
        notifyAll();
      }
    }
    toClose.forEach(NbdConnection::close);
  }

  @Override
  public void close() {
    List<NbdConnection> toClose;
    synchronized (this) {
      closed = true;
      toClose = new ArrayList<>();
      idle.forEach(i -> toClose.add(i.connection()));
      open -= idle.size();
      idle.clear();
      notifyAll();
    }
    toClose.forEach(NbdConnection::close);
  }
}
