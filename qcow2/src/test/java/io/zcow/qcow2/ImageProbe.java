package io.zcow.qcow2;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Walks the L1 and L2 tables of an image with plain reads, independently of {@link ImageReader},
 * so tests can find the entries to poke.
 */
final class ImageProbe {
  /** One allocated L2 entry: the guest cluster it maps, its value and where it sits in the file. */
  record Mapping(long guestCluster, long entry, long location) {
    boolean compressed() {
      return L2Entry.isCompressed(entry);
    }
  }

  final Header header;
  final List<Long> l1Locations = new ArrayList<>();
  final List<Mapping> mappings = new ArrayList<>();

  ImageProbe(Path image) {
    try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
      header = Header.decode(read(ch, 0, 512));
      int cs = header.clusterSize();
      ByteBuffer l1 = read(ch, header.l1TableOffset(), header.l1Size() * 8);
      for (int i = 0; i < header.l1Size(); i++) {
        long l2 = l1.getLong(8 * i) & L2Entry.OFFSET_MASK;
        if (l2 == 0) {
          continue;
        }
        l1Locations.add(header.l1TableOffset() + 8L * i);
        ByteBuffer table = read(ch, l2, cs);
        for (int j = 0; j < cs / 8; j++) {
          long e = table.getLong(8 * j);
          if (e != 0) {
            mappings.add(new Mapping((long) i * (cs / 8) + j, e, l2 + 8L * j));
          }
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  Mapping firstCompressed() {
    return mappings.stream().filter(Mapping::compressed).findFirst().orElseThrow();
  }

  Mapping firstStandard() {
    return mappings.stream().filter(m -> !m.compressed()).findFirst().orElseThrow();
  }

  long count(boolean compressed) {
    return mappings.stream().filter(m -> m.compressed() == compressed).count();
  }

  private static ByteBuffer read(FileChannel ch, long offset, int length) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(length);
    while (b.hasRemaining() && ch.read(b, offset + b.position()) >= 0) {
      // keep reading
    }
    return b.flip();
  }
}
