package io.zcow.testkit;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Generators of test disks (raw image files). Except {@link #ext4}, the bytes depend only on the
 * arguments, never on the machine or on how the file is written: the same seed gives the same
 * file. Files are written with large sequential writes; an existing file is replaced. Sizes need
 * not be a multiple of anything. Every generator returns its {@code out} argument.
 */
public final class Disks {

  /** Unit of deterministic random content: the bytes at a position depend on (seed, position / UNIT). */
  private static final int UNIT = 64 * 1024;
  /** Bytes handed to each write call. */
  private static final int WRITE_SIZE = 4 << 20;

  private Disks() {}

  /** A file of {@code size} bytes, all equal to {@code b}. */
  public static Path repeatedByte(Path out, long size, byte b) {
    checkSize(size);
    return writeUnits(out, size, UNIT, (unit, buf) -> {
      while (buf.hasRemaining()) {
        buf.put(b);
      }
    });
  }

  /** Incompressible pseudo-random bytes. */
  public static Path random(Path out, long size, long seed) {
    checkSize(size);
    return writeUnits(out, size, UNIT, (unit, buf) -> Content.random(buf, seed, unit));
  }

  /**
   * Clusters of {@code clusterSize} bytes that alternate between compressible (cluster 0, 2, 4…:
   * text-like, or a short repeated pattern) and random (cluster 1, 3, 5…). Gives a compressed
   * image about as many raw clusters as compressed ones.
   */
  public static Path alternating(Path out, long size, int clusterSize, long seed) {
    checkSize(size);
    if (clusterSize <= 0) {
      throw new IllegalArgumentException("clusterSize must be positive, was " + clusterSize);
    }
    Content.Text text = new Content.Text(seed);
    return writeUnits(out, size, clusterSize, (cluster, buf) -> {
      if (cluster % 2 == 1) {
        Content.random(buf, seed, cluster);
      } else if (cluster % 6 == 4) {
        Content.pattern(buf, seed, cluster);
      } else {
        text.fill(buf, cluster);
      }
    });
  }

  /**
   * A sparse file of {@code size} bytes: holes everywhere except 64 KiB of random data at each of
   * {@code dataOffsets} (cut short at the end of the file).
   */
  public static Path sparse(Path out, long size, long seed, long... dataOffsets) {
    checkSize(size);
    for (long offset : dataOffsets) {
      if (offset < 0 || offset >= size) {
        throw new IllegalArgumentException(
            "dataOffsets must lie in [0, size=" + size + "), got " + offset);
      }
    }
    try {
      Files.deleteIfExists(out);
      try (RandomAccessFile file = new RandomAccessFile(out.toFile(), "rw")) {
        file.setLength(size);
        FileChannel ch = file.getChannel();
        ByteBuffer buf = ByteBuffer.allocate(UNIT);
        for (long offset : dataOffsets) {
          buf.clear().limit((int) Math.min(UNIT, size - offset));
          Content.random(buf, seed, offset);
          buf.flip();
          writeFully(ch, buf, offset);
        }
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + out, e);
    }
  }

  /**
   * A mix of region kinds, in lengths from 1 byte to a few MiB, most of them odd: zeros written as
   * data, holes, text-like data, short repeated patterns and random data. The region boundaries
   * fall mid-cluster and mid-sector, which is what makes it useful.
   */
  public static Path mixed(Path out, long size, long seed) {
    checkSize(size);
    SplittableRandom rng = new SplittableRandom(seed);
    Content.Text text = new Content.Text(seed);
    try {
      Files.deleteIfExists(out);
      try (RandomAccessFile file = new RandomAccessFile(out.toFile(), "rw")) {
        FileChannel ch = file.getChannel();
        ByteBuffer buf = ByteBuffer.allocate(WRITE_SIZE);
        long pos = 0;
        long region = 0;
        while (pos < size) {
          long len = Math.min(size - pos, regionLength(rng));
          int kind = rng.nextInt(5);
          region++;
          if (kind != 1) { // kind 1 is a hole: nothing to write
            for (long done = 0; done < len; ) {
              int n = (int) Math.min(len - done, buf.capacity());
              buf.clear().limit(n);
              long part = region * 4096 + done / buf.capacity();
              switch (kind) {
                case 0 -> Arrays.fill(buf.array(), 0, n, (byte) 0);
                case 2 -> text.fill(buf, part);
                case 3 -> Content.pattern(buf, seed, part);
                default -> Content.random(buf, seed ^ 0x5DEECE66DL, part);
              }
              buf.position(0).limit(n);
              writeFully(ch, buf, pos + done);
              done += n;
            }
          }
          pos += len;
        }
        file.setLength(size);
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + out, e);
    }
  }

  /**
   * A real ext4 file system of {@code size} bytes (at least 16 MiB), made with {@code mkfs.ext4
   * -d} from files of this machine: the JDK of the running JVM, text-heavy parts of /usr/share,
   * then /usr/share/doc, /usr/share, /usr/lib and /usr/bin, as much as fits (about three quarters
   * of the size; no single file over a quarter of that). The content is
   * real and varied (text, class libraries, native code, compressed archives), but depends on the
   * machine. Skips the test (fails it on CI) when mkfs.ext4 is missing.
   */
  public static Path ext4(Path out, long size) {
    return Ext4Builder.build(out, size);
  }

  private static long regionLength(SplittableRandom rng) {
    return switch (rng.nextInt(4)) {
      case 0 -> 1 + rng.nextInt(4097); // a few sectors or less
      case 1 -> 1 + rng.nextInt(300 * 1024); // a few clusters
      default -> 1 + rng.nextInt(3 << 20); // a few MiB
    };
  }

  static void checkSize(long size) {
    if (size < 0) {
      throw new IllegalArgumentException("size must not be negative, was " + size);
    }
  }

  /** Fills one unit of content: {@code buf} has exactly the unit's bytes remaining. */
  @FunctionalInterface
  private interface UnitFiller {
    void fill(long unitIndex, ByteBuffer buf);
  }

  private static Path writeUnits(Path out, long size, int unitSize, UnitFiller filler) {
    int perWrite = Math.max(1, WRITE_SIZE / unitSize);
    ByteBuffer buf = ByteBuffer.allocate(Math.multiplyExact(perWrite, unitSize));
    try (FileChannel ch =
        FileChannel.open(
            out,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE)) {
      long unit = 0;
      for (long pos = 0; pos < size; ) {
        buf.clear();
        while (buf.hasRemaining() && pos + buf.position() < size) {
          int n = (int) Math.min(unitSize, size - pos - buf.position());
          ByteBuffer slice = buf.slice(buf.position(), n);
          filler.fill(unit++, slice);
          buf.position(buf.position() + n);
        }
        buf.flip();
        int n = buf.remaining();
        writeFully(ch, buf, pos);
        pos += n;
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + out, e);
    }
  }

  static void writeFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
    long pos = position;
    while (buf.hasRemaining()) {
      pos += ch.write(buf, pos);
    }
  }

  /** Content kinds, each a pure function of its arguments. */
  static final class Content {
    private Content() {}

    /** SplitMix64's finaliser: a good 64-bit mix, so nearby seeds give unrelated streams. */
    static long mix(long z) {
      z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
      z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
      return z ^ (z >>> 31);
    }

    /** Fills the remaining bytes of {@code buf} with random bytes determined by (seed, unit). */
    static void random(ByteBuffer buf, long seed, long unit) {
      long state = mix(seed * 0x9E3779B97F4A7C15L + mix(unit));
      ByteBuffer b = buf.slice().order(ByteOrder.LITTLE_ENDIAN);
      while (b.remaining() >= 8) {
        state += 0x9E3779B97F4A7C15L;
        b.putLong(mix(state));
      }
      long last = mix(state + 0x9E3779B97F4A7C15L);
      while (b.hasRemaining()) {
        b.put((byte) last);
        last >>>= 8;
      }
      buf.position(buf.limit());
    }

    /** A pattern of 1 to 64 random bytes repeated: compresses to almost nothing. */
    static void pattern(ByteBuffer buf, long seed, long unit) {
      SplittableRandom rng = new SplittableRandom(mix(seed ^ mix(~unit)));
      byte[] p = new byte[1 + rng.nextInt(64)];
      rng.nextBytes(p);
      for (int i = 0; buf.hasRemaining(); i = (i + 1) % p.length) {
        buf.put(p[i]);
      }
    }

    /**
     * Text-like bytes: slices of a pool of pseudo-English built once per seed. Compresses about
     * as well as real text, and is cheap to produce.
     */
    static final class Text {
      private static final String[] WORDS = (
          "the of and to in is that for it as was with be by on not he this are or his from at "
              + "which but have an they you were her she there been one all we their has would "
              + "when if so no will more can out other into some could time these two may then "
              + "do first any my now such like our over man me even most made after also did "
              + "many before must through back years where much your way well down should because "
              + "each just those people how too little state good very make world still own see "
              + "cluster sector offset block device image backup write read range writer worker "
              + "kafka partition record table refcount compressed zstd qcow2 header")
          .split(" ");
      private static final int POOL = 256 * 1024;

      private final byte[] pool;
      private final long seed;

      Text(long seed) {
        this.seed = seed;
        SplittableRandom rng = new SplittableRandom(seed);
        StringBuilder sb = new StringBuilder(POOL + 64);
        int column = 0;
        while (sb.length() < POOL) {
          String w = WORDS[rng.nextInt(WORDS.length)];
          if (rng.nextInt(12) == 0) {
            sb.append(rng.nextInt(100_000)).append(' ');
          }
          sb.append(w);
          column += w.length() + 1;
          if (column > 60 + rng.nextInt(20)) {
            sb.append(rng.nextInt(8) == 0 ? ".\n\n" : "\n");
            column = 0;
          } else {
            sb.append(' ');
          }
        }
        pool = Arrays.copyOf(sb.toString().getBytes(StandardCharsets.US_ASCII), POOL);
      }

      /** Fills the remaining bytes of {@code buf} with text chosen by (seed, unit). */
      void fill(ByteBuffer buf, long unit) {
        SplittableRandom rng = new SplittableRandom(mix(seed + mix(unit)));
        while (buf.hasRemaining()) {
          int from = rng.nextInt(POOL);
          int n = Math.min(buf.remaining(), Math.min(POOL - from, 512 + rng.nextInt(8192)));
          buf.put(pool, from, n);
        }
      }
    }
  }
}
