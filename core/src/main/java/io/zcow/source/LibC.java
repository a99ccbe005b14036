package io.zcow.source;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Platform;

/**
 * The few libc calls Java 17 does not offer: lseek with SEEK_DATA/SEEK_HOLE needs a raw fd.
 * Linux on 64-bit only, where off_t is 64 bits and the whence values below hold (other systems
 * number SEEK_DATA/SEEK_HOLE differently). No O_CLOEXEC: its value differs between
 * architectures, and Java's process launcher closes inherited descriptors anyway.
 */
interface LibC extends Library {
  int O_RDONLY = 0;
  int SEEK_END = 2;
  int SEEK_DATA = 3;
  int SEEK_HOLE = 4;
  int ENXIO = 6;
  int EINVAL = 22;

  int open(String path, int flags) throws LastErrorException;

  long lseek(int fd, long offset, int whence) throws LastErrorException;

  int close(int fd) throws LastErrorException;

  /** libc, or null where it cannot be used (not 64-bit Linux, no native access). */
  static LibC instance() {
    return Holder.INSTANCE;
  }

  /** Loads lazily and once; a failure means "no hole detection", not a broken worker. */
  final class Holder {
    static final LibC INSTANCE = load();

    private Holder() {}

    private static LibC load() {
      if (!Platform.isLinux() || !Platform.is64Bit()) {
        return null;
      }
      try {
        return Native.load(Platform.C_LIBRARY_NAME, LibC.class);
      } catch (UnsatisfiedLinkError | RuntimeException e) {
        return null;
      }
    }
  }
}
