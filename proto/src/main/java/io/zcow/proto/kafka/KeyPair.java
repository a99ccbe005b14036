package io.zcow.proto.kafka;

import io.zcow.BadInputException;
import java.nio.file.Path;
import java.util.HexFormat;

/**
 * The text form of a key file that holds two keys, for rotation without downtime:
 *
 * <pre>
 * zcow-keys v1
 * current HEX    (signs, and is accepted)
 * previous HEX   (accepted only)
 * </pre>
 *
 * Each key is at least {@link RecordAuth#MIN_KEY_BYTES} bytes in hex; blank lines and lines
 * starting with '#' are skipped. The steps are in docs/OPERATIONS.md.
 */
final class KeyPair {
  private KeyPair() {}

  static RecordAuth parse(Path file, String text) {
    byte[] current = null;
    byte[] previous = null;
    String[] lines = text.split("\n");
    for (int i = 1; i < lines.length; i++) {
      String line = lines[i].strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      String[] words = line.split("\\s+");
      if (words.length != 2 || !(words[0].equals("current") || words[0].equals("previous"))) {
        throw bad(file, "line " + (i + 1) + " is not 'current HEX' or 'previous HEX'");
      }
      byte[] key;
      try {
        key = HexFormat.of().parseHex(words[1]);
      } catch (IllegalArgumentException e) {
        throw bad(file, "line " + (i + 1) + ": the key is not hex");
      }
      if (key.length < RecordAuth.MIN_KEY_BYTES) {
        throw bad(file, "line " + (i + 1) + ": a key needs at least " + RecordAuth.MIN_KEY_BYTES + " bytes ("
            + 2 * RecordAuth.MIN_KEY_BYTES + " hex digits), not " + key.length);
      }
      if (words[0].equals("current") ? current != null : previous != null) {
        throw bad(file, "line " + (i + 1) + ": a second " + words[0] + " key");
      }
      if (words[0].equals("current")) {
        current = key;
      } else {
        previous = key;
      }
    }
    if (current == null) {
      throw bad(file, "no 'current HEX' line");
    }
    return previous == null ? RecordAuth.withKey(current) : RecordAuth.withKeys(current, previous);
  }

  private static BadInputException bad(Path file, String what) {
    return new BadInputException("--auth-key-file " + file + " (" + RecordAuth.KEYS_FORMAT + "): " + what);
  }
}
