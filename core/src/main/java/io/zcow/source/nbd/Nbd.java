package io.zcow.source.nbd;

/**
 * The wire constants of the NBD protocol this client speaks (doc/proto.md of the NBD project):
 * fixed newstyle negotiation, structured replies, {@code base:allocation}. Extended headers are
 * not spoken: neither qemu-nbd 7.2 nor nbdkit 1.32 offers them.
 */
final class Nbd {
  private Nbd() {}

  static final long NBDMAGIC = 0x4e42444d41474943L; // "NBDMAGIC"
  static final long IHAVEOPT = 0x49484156454F5054L; // "IHAVEOPT": newstyle, and every option's prefix
  static final long OLDSTYLE_MAGIC = 0x0000420281861253L;
  static final long OPTION_REPLY_MAGIC = 0x3e889045565a9L;

  static final int FLAG_FIXED_NEWSTYLE = 1;
  static final int FLAG_NO_ZEROES = 1 << 1;

  static final int OPT_EXPORT_NAME = 1;
  static final int OPT_ABORT = 2;
  static final int OPT_STARTTLS = 5;
  static final int OPT_GO = 7;
  static final int OPT_STRUCTURED_REPLY = 8;
  static final int OPT_SET_META_CONTEXT = 10;

  static final int REP_ACK = 1;
  static final int REP_INFO = 3;
  static final int REP_META_CONTEXT = 4;
  static final int REP_ERR_BIT = 1 << 31;
  static final int REP_ERR_UNSUP = REP_ERR_BIT | 1;
  static final int REP_ERR_POLICY = REP_ERR_BIT | 2;
  static final int REP_ERR_INVALID = REP_ERR_BIT | 3;
  static final int REP_ERR_PLATFORM = REP_ERR_BIT | 4;
  static final int REP_ERR_TLS_REQD = REP_ERR_BIT | 5;
  static final int REP_ERR_UNKNOWN = REP_ERR_BIT | 6;
  static final int REP_ERR_SHUTDOWN = REP_ERR_BIT | 7;
  static final int REP_ERR_BLOCK_SIZE_REQD = REP_ERR_BIT | 8;
  static final int REP_ERR_TOO_BIG = REP_ERR_BIT | 9;

  static final int INFO_EXPORT = 0;
  static final int INFO_BLOCK_SIZE = 3;

  static final int TFLAG_HAS_FLAGS = 1;
  static final int TFLAG_READ_ONLY = 1 << 1;
  static final int TFLAG_CAN_MULTI_CONN = 1 << 8;

  static final int REQUEST_MAGIC = 0x25609513;
  static final int SIMPLE_REPLY_MAGIC = 0x67446698;
  static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;

  static final int CMD_READ = 0;
  static final int CMD_DISC = 2;
  static final int CMD_BLOCK_STATUS = 7;

  static final int REPLY_FLAG_DONE = 1;
  static final int REPLY_TYPE_NONE = 0;
  static final int REPLY_TYPE_OFFSET_DATA = 1;
  static final int REPLY_TYPE_OFFSET_HOLE = 2;
  static final int REPLY_TYPE_BLOCK_STATUS = 5;
  static final int REPLY_TYPE_ERROR_BIT = 1 << 15;
  static final int REPLY_TYPE_ERROR = REPLY_TYPE_ERROR_BIT | 1;
  static final int REPLY_TYPE_ERROR_OFFSET = REPLY_TYPE_ERROR_BIT | 2;

  static final int STATE_HOLE = 1;
  static final int STATE_ZERO = 1 << 1;
  /** qemu:dirty-bitmap:NAME contexts: the extent changed since the bitmap was enabled (QEMU's nbd.txt). */
  static final int STATE_DIRTY = 1;
  static final String DIRTY_BITMAP_PREFIX = "qemu:dirty-bitmap:";

  static final String BASE_ALLOCATION = "base:allocation";

  /** The largest read when the server states no maximum: the spec's interoperable default. */
  static final int DEFAULT_MAX_PAYLOAD = 32 << 20;
  /**
   * The most extents one BLOCK_STATUS chunk may carry (2^20, the spec's SHOULD): a longer list is
   * refused as a protocol error rather than buffered.
   */
  static final int MAX_EXTENTS_PER_CHUNK = 1 << 20;
  /** Error messages are at most 4096 bytes (spec); the chunk's fixed fields come on top. */
  static final int MAX_ERROR_CHUNK = 4096 + 14;
  /** Option replies are small (names, block sizes); more than this is a broken or hostile server. */
  static final int MAX_OPTION_REPLY = 64 << 10;

  static String optionName(int option) {
    return switch (option) {
      case OPT_EXPORT_NAME -> "NBD_OPT_EXPORT_NAME";
      case OPT_ABORT -> "NBD_OPT_ABORT";
      case OPT_STARTTLS -> "NBD_OPT_STARTTLS";
      case OPT_GO -> "NBD_OPT_GO";
      case OPT_STRUCTURED_REPLY -> "NBD_OPT_STRUCTURED_REPLY";
      case OPT_SET_META_CONTEXT -> "NBD_OPT_SET_META_CONTEXT";
      default -> "option " + option;
    };
  }

  static String replyName(int reply) {
    return switch (reply) {
      case REP_ACK -> "NBD_REP_ACK";
      case REP_INFO -> "NBD_REP_INFO";
      case REP_META_CONTEXT -> "NBD_REP_META_CONTEXT";
      case REP_ERR_UNSUP -> "NBD_REP_ERR_UNSUP";
      case REP_ERR_POLICY -> "NBD_REP_ERR_POLICY";
      case REP_ERR_INVALID -> "NBD_REP_ERR_INVALID";
      case REP_ERR_PLATFORM -> "NBD_REP_ERR_PLATFORM";
      case REP_ERR_TLS_REQD -> "NBD_REP_ERR_TLS_REQD";
      case REP_ERR_UNKNOWN -> "NBD_REP_ERR_UNKNOWN";
      case REP_ERR_SHUTDOWN -> "NBD_REP_ERR_SHUTDOWN";
      case REP_ERR_BLOCK_SIZE_REQD -> "NBD_REP_ERR_BLOCK_SIZE_REQD";
      case REP_ERR_TOO_BIG -> "NBD_REP_ERR_TOO_BIG";
      default -> "reply type 0x" + Integer.toHexString(reply);
    };
  }

  static String errnoName(int error) {
    return switch (error) {
      case 1 -> "EPERM";
      case 5 -> "EIO";
      case 12 -> "ENOMEM";
      case 22 -> "EINVAL";
      case 28 -> "ENOSPC";
      case 75 -> "EOVERFLOW";
      case 95 -> "ENOTSUP";
      case 108 -> "ESHUTDOWN";
      default -> "error " + error;
    };
  }
}
