package io.zcow;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The target's storage refused an operation on an image: a write, a read or an fsync failed (EIO
 * from a failing disk, a lost network volume, a full file system — {@link TargetFullException}).
 * Trying the same operation again does not help until an operator acts, so it is not a {@link
 * RetriableException}: the job it happened to fails at its last committed checkpoint, keeps its
 * {@code .part} file, and a resubmission with the same job id resumes from there.
 *
 * <p>After a failed fsync the state of the file's pages is unknown (Linux may have dropped the
 * dirty pages and marked them clean), so nothing may fsync that file again and trust it: the job
 * resumes from its checkpoint instead.
 *
 * <p>The message names the operation, the file and the error; {@link #remedy()} says in one line
 * what an operator does about it.
 */
public class TargetIoException extends ZcowException {
  private final Path file;

  public TargetIoException(String message, Path file, Throwable cause) {
    super(message, cause);
    this.file = file;
  }

  /**
   * A TargetIoException for a failed operation, or a {@link TargetFullException} when the error
   * is the file system saying it is full.
   *
   * @param what e.g. "write of 4194304 bytes at 0x3440000 in /t/img.qcow2.part"
   */
  public static TargetIoException of(String what, Path file, IOException e) {
    if (TargetFullException.isNoSpace(e)) {
      return TargetFullException.of(what, file, e);
    }
    return new TargetIoException("target I/O error: " + what + " failed: " + e.getMessage(), file, e);
  }

  /** The file the failed operation was on. */
  public Path file() {
    return file;
  }

  /** One line for operators: what to do before the job is submitted again. */
  public String remedy() {
    return "check the target disk (kernel log, SMART, the volume's health), repair or replace it, then submit the"
        + " job again with the same job id to resume from its last checkpoint";
  }
}
