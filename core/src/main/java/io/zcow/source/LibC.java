package io.zcow.source;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Platform;

/**
 * The few libc calls Java 17 does not offer: lseek with SEEK_DATA/SEEK_HOLE needs a raw fd, and
 * so does checking where an open descriptor really points (/proc/self/fd).
 * Linux on 64-bit only, where off_t is 64 bits and the whence values below hold (other systems
 * number SEEK_DATA/SEEK_HOLE differently). No O_CLOEXEC: its value differs between
 * architectures, and Java's process launcher closes inherited descriptors anyway.
 */
public interface LibC extends Library {
  int O_RDONLY = 0;
  int O_RDWR = 2;
  int O_CREAT = 0100;
  int O_EXCL = 0200;
  int ENOENT = 2;
  int EEXIST = 17;
  int ELOOP = 40;
  int SEEK_END = 2;
  int SEEK_DATA = 3;
  int SEEK_HOLE = 4;
  int ENXIO = 6;
  int EINVAL = 22;

  int open(String path, int flags) throws LastErrorException;

  /** open(2) with a mode, for O_CREAT. */
  int open(String path, int flags, int mode) throws LastErrorException;

  long lseek(int fd, long offset, int whence) throws LastErrorException;

  int close(int fd) throws LastErrorException;

  /**
   * O_NOFOLLOW of this architecture (it differs between them), or 0 where it is not known here:
   * the callers then open through Java.
   */
  static int noFollow() {
    return switch (Platform.ARCH) {
      case "x86-64" -> 0400000;
      case "aarch64" -> 0100000;
      default -> 0;
    };
  }

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
