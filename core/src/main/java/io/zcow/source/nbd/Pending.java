package io.zcow.source.nbd;

import io.zcow.RetriableException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A request of an {@link NbdConnection} awaiting its reply; its fields belong to the reader thread
 * ({@link ReplyReader}) until it is settled.
 */
abstract class Pending {
  final long offset;
  final long length;
  String error; // the first error chunk's text

  Pending(long offset, long length) {
    this.offset = offset;
    this.length = length;
  }

  abstract String what();

  /** The request is over: done when {@code failure} is null. Called once, on any thread. */
  abstract void settle(RetriableException failure);

  /** NBD_CMD_READ: the reply's data lands in {@link #dst}, {@link #covered} counts it. */
  static final class Read extends Pending {
    private final NbdConnection.ReadSpan span;
    final ByteBuffer dst; // exactly length bytes, position 0
    long covered;

    Read(NbdConnection.ReadSpan span, long offset, ByteBuffer dst) {
      super(offset, dst.remaining());
      this.span = span;
      this.dst = dst;
    }

    @Override
    String what() {
      return "read of " + length + " bytes at 0x" + Long.toHexString(offset);
    }

    @Override
    void settle(RetriableException failure) {
      span.requestEnded(failure);
    }
  }

  /** NBD_CMD_BLOCK_STATUS: the extents of one meta context, in order. */
  static final class Status extends Pending {
    final long context; // the meta context whose extents are kept; others are ignored
    final List<Extent> extents = new ArrayList<>();
    final CompletableFuture<Void> done = new CompletableFuture<>();

    Status(long offset, long length, long context) {
      super(offset, length);
      this.context = context;
    }

    @Override
    String what() {
      return "block status of " + length + " bytes at 0x" + Long.toHexString(offset);
    }

    @Override
    void settle(RetriableException failure) {
      if (failure == null) {
        done.complete(null);
      } else {
        done.completeExceptionally(failure);
      }
    }
  }
}
