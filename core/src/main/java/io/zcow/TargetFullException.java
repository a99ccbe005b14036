package io.zcow;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The target's file system has no space left (ENOSPC, or EDQUOT for a quota). Trying the same
 * write again does not help until an operator frees space, so it is not a {@link
 * RetriableException}: the job it happened to fails, keeps its {@code .part} file and last
 * checkpoint, and a resubmission with the same job id continues from there. A {@link
 * TargetIoException} whose remedy is freeing space.
 */
public class TargetFullException extends TargetIoException {
  public TargetFullException(String message, Path file, Throwable cause) {
    super(message, file, cause);
  }

  /** The error is the file system saying it is full (or the user's quota is used up). */
  public static boolean isNoSpace(IOException e) {
    String m = e.getMessage();
    return m != null && (m.contains("No space left on device") || m.contains("Disk quota exceeded"));
  }

  /**
   * A TargetFullException whose message names the operation, the file and the space still usable
   * on its file system.
   *
   * @param what e.g. "write of 4194304 bytes at 0x3440000 in /t/img.qcow2.part"
   */
  public static TargetFullException of(String what, Path file, IOException e) {
    return new TargetFullException("target file system is full: " + what + " failed: " + e.getMessage() + space(file),
        file, e);
  }

  @Override
  public String remedy() {
    return "free space, then submit the job again with the same job id to resume";
  }

  private static String space(Path file) {
    try {
      Path dir = file.toAbsolutePath().getParent();
      var store = Files.getFileStore(dir);
      return " (" + store.getUsableSpace() + " of " + store.getTotalSpace() + " bytes usable in " + dir + ")";
    } catch (IOException | RuntimeException ignored) {
      return "";
    }
  }
}
