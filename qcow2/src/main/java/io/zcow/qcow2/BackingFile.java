package io.zcow.qcow2;

import io.zcow.BadInputException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The backing file of an overlay (qcow2.txt: header fields backing_file_offset at 8 and
 * backing_file_size at 16, and the "backing file format name" header extension 0xe2792aca).
 *
 * <p>The name is stored relative to the overlay's directory: QEMU resolves a relative backing
 * name against the directory of the image that names it, so a chain can be moved as a whole. The
 * format is always {@code qcow2} (zcow chains only its own images).
 *
 * @param name the backing file as the overlay names it (relative, at most 1023 bytes of UTF-8)
 * @param virtualSize the backing image's virtual size (an overlay may be larger, never smaller)
 */
public record BackingFile(String name, long virtualSize) {
  /** qcow2.txt: "Backing file format name string" header extension. */
  public static final int EXT_BACKING_FORMAT = 0xe2792aca;
  /** qcow2.txt: backing_file_size "must not be longer than 1023 bytes". */
  public static final int MAX_NAME_BYTES = 1023;
  static final byte[] FORMAT = "qcow2".getBytes(StandardCharsets.US_ASCII);

  public BackingFile {
    int n = name.getBytes(StandardCharsets.UTF_8).length;
    if (n == 0 || n > MAX_NAME_BYTES) {
      throw new BadInputException("backing file name must be 1.." + MAX_NAME_BYTES + " bytes, is " + n + ": " + name);
    }
  }

  /**
   * The previous image of a chain, checked for use as the backing file of {@code target}: it must
   * exist, be a qcow2 v3 image that is neither dirty nor marked corrupt, whose metadata {@link
   * ImageCheck} finds sound, with the cluster size of
   * {@code geometry} and a virtual size not larger than the new one (a source that shrank is
   * refused).
   *
   * @throws BadInputException naming what is wrong, in one line
   */
  public static BackingFile of(Path previous, Path target, ImageGeometry geometry) {
    if (previous.toAbsolutePath().normalize().equals(target.toAbsolutePath().normalize())) {
      throw new BadInputException("previous image " + previous + " is the target itself: an overlay cannot back onto"
          + " the file it replaces");
    }
    if (!Files.isRegularFile(previous)) {
      throw new BadInputException("previous image " + previous + " does not exist or is not a file");
    }
    Header h;
    try (FileChannel ch = FileChannel.open(previous)) {
      ByteBuffer head = ByteBuffer.allocate(Header.V3_LENGTH);
      while (head.hasRemaining() && ch.read(head, head.position()) > 0) {
        // read the whole header
      }
      h = Header.decode(head.flip());
      checkOwnBacking(previous, ch, head);
    } catch (IOException e) {
      throw new BadInputException("cannot read previous image " + previous + ": " + e.getMessage());
    } catch (io.zcow.CorruptException e) {
      throw new BadInputException("previous image " + previous + " is not a usable qcow2 image: " + e.getMessage());
    }
    if (h.version() != 3 || (h.incompatibleFeatures() & (Header.INCOMPAT_DIRTY | Header.INCOMPAT_CORRUPT)) != 0) {
      throw new BadInputException("previous image " + previous + " is not a clean qcow2 v3 image (version "
          + h.version() + String.format(", incompatible features 0x%x)", h.incompatibleFeatures()));
    }
    try {
      ImageCheck.metadata(previous);
    } catch (io.zcow.CorruptException e) {
      throw new BadInputException("previous image " + previous + " is not check-clean (" + e.getMessage()
          + "); qemu-img check shows all it finds, and a new full backup starts a sound chain");
    }
    if (h.clusterSize() != geometry.clusterSize()) {
      throw new BadInputException("previous image " + previous + " has " + h.clusterSize()
          + "-byte clusters, the new image " + geometry.clusterSize() + ": a chain keeps one cluster size");
    }
    if (h.virtualSize() > geometry.virtualSize()) {
      throw new BadInputException("the source shrank: previous image " + previous + " is " + h.virtualSize()
          + " bytes, the source now " + geometry.virtualSize() + " (start a new full backup)");
    }
    Path dir = target.toAbsolutePath().normalize().getParent();
    String name = dir.relativize(previous.toAbsolutePath().normalize()).toString();
    return new BackingFile(name, h.virtualSize());
  }

  /**
   * A previous image that is itself an overlay must find its own backing file (QEMU resolves a
   * relative name against the image's directory), or the new chain could never be read.
   */
  private static void checkOwnBacking(Path previous, FileChannel ch, ByteBuffer header) throws IOException {
    long offset = header.getLong(8);
    int size = header.getInt(16);
    if (offset == 0) {
      return;
    }
    if (size <= 0 || size > MAX_NAME_BYTES) {
      throw new BadInputException(String.format("previous image %s has a backing_file_size of %d at offset 0x10",
          previous, size));
    }
    ByteBuffer name = ByteBuffer.allocate(size);
    while (name.hasRemaining() && ch.read(name, offset + name.position()) > 0) {
      // read the whole name
    }
    if (name.hasRemaining()) {
      throw new BadInputException(String.format("previous image %s is truncated at its backing file name (0x%x)",
          previous, offset));
    }
    Path own = Path.of(new String(name.array(), StandardCharsets.UTF_8));
    Path resolved = own.isAbsolute() ? own : previous.toAbsolutePath().getParent().resolve(own);
    if (!Files.isRegularFile(resolved)) {
      throw new BadInputException("previous image " + previous + " backs onto " + own + ", which is missing ("
          + resolved + "): its chain is broken");
    }
  }

  /**
   * Appends, at {@code b}'s position, the backing-format extension followed by the end marker,
   * then the name; returns the name's offset in the header cluster.
   */
  int appendExtensionsAndName(ByteBuffer b) {
    b.order(ByteOrder.BIG_ENDIAN);
    b.putInt(EXT_BACKING_FORMAT).putInt(FORMAT.length).put(FORMAT);
    // Extension data is padded to a multiple of 8 bytes.
    b.put(new byte[(8 - FORMAT.length % 8) % 8]);
    b.putInt(0).putInt(0); // end of header extensions
    int offset = b.position();
    b.put(name.getBytes(StandardCharsets.UTF_8));
    return offset;
  }

  int nameBytes() {
    return name.getBytes(StandardCharsets.UTF_8).length;
  }
}
