package io.zcow.proto.kafka;

import io.zcow.BadInputException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Set;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Record authentication: an HMAC-SHA256 under a key the whole cluster shares, carried in the
 * record header {@value #HEADER}, computed over a domain-separated encoding of the topic name,
 * the record key and the value (each length-prefixed), so a record moved to another topic or
 * under another key no longer verifies, and no bytes can be shifted between the fields.
 *
 * <p>The header value is the key id (4 bytes, derived from the key, so a refusal can say "signed
 * with another key") followed by the 32-byte MAC. A record replayed unchanged into its own topic
 * verifies: the roles tolerate that (the writer keeps the first copy of every cluster, a task
 * done twice costs only work); see docs/DESIGN.md.
 *
 * <p>{@link #NONE} (no key) signs nothing and accepts everything, header or not: the behaviour
 * without {@code --auth-key-file}. Immutable and thread safe ({@link Mac} is not: each thread
 * gets its own clone).
 */
public final class RecordAuth {
  private static final Logger LOG = LoggerFactory.getLogger(RecordAuth.class);

  /** The record header holding key id and MAC. */
  public static final String HEADER = "zcow-mac";
  /** The shortest key accepted: 256 bits, the size of the MAC. */
  public static final int MIN_KEY_BYTES = 32;
  /** The longest key file read: anything longer is not a key (a disk image given by mistake). */
  public static final int MAX_KEY_BYTES = 4096;
  static final int KEY_ID_BYTES = 4;
  static final int MAC_BYTES = 32;
  private static final String ALGORITHM = "HmacSHA256";
  private static final byte[] DOMAIN = "zcow record mac v1\0".getBytes(StandardCharsets.US_ASCII);

  /**
   * The first line of a key file that holds the current key and a previous one, in hex, for
   * rotation ({@link KeyPair}); any other file is one key, its bytes as they are.
   */
  public static final String KEYS_FORMAT = "zcow-keys v1";

  /** No key: nothing is signed, every record is accepted. */
  public static final RecordAuth NONE = new RecordAuth(null);

  /** What {@link #verify} found. */
  public enum Status {
    /** A valid MAC under this key (or no key is configured). */
    OK,
    /** No {@value #HEADER} header. */
    MISSING,
    /** A header that is malformed, from another key, or a MAC that does not match. */
    BAD
  }

  /** The outcome of {@link #verify}, with a reason fit for a log line and an event. */
  public record Verdict(Status status, String reason) {
    static final Verdict OK = new Verdict(Status.OK, "");

    public boolean ok() {
      return status == Status.OK;
    }
  }

  private final Mac prototype; // null for NONE; never used directly, only cloned
  private final byte[] keyId;
  private final ThreadLocal<Mac> macs;
  private final RecordAuth previous; // also accepted, never used to sign (key rotation); may be null

  private RecordAuth(byte[] key) {
    this(key, null);
  }

  private RecordAuth(byte[] key, RecordAuth previous) {
    this.previous = previous;
    if (key == null) {
      prototype = null;
      keyId = new byte[0];
      macs = null;
      return;
    }
    try {
      prototype = Mac.getInstance(ALGORITHM);
      prototype.init(new SecretKeySpec(key, ALGORITHM));
      keyId = Arrays.copyOf(prototype.doFinal("zcow key id".getBytes(StandardCharsets.US_ASCII)), KEY_ID_BYTES);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("this JVM has no " + ALGORITHM + ": " + e, e);
    }
    macs = ThreadLocal.withInitial(this::newMac);
  }

  private Mac newMac() {
    try {
      return (Mac) prototype.clone();
    } catch (CloneNotSupportedException e) {
      throw new IllegalStateException(ALGORITHM + " cannot be cloned", e);
    }
  }

  /**
   * Authentication under {@code key}.
   *
   * @throws IllegalArgumentException when the key is shorter than {@link #MIN_KEY_BYTES}
   */
  public static RecordAuth withKey(byte[] key) {
    if (key == null || key.length < MIN_KEY_BYTES) {
      throw new IllegalArgumentException("key must be at least " + MIN_KEY_BYTES + " bytes: "
          + (key == null ? "null" : key.length));
    }
    return new RecordAuth(key.clone());
  }

  /**
   * The key in {@code file} (its bytes as they are, newline included), or {@link #NONE} when
   * {@code file} is null. A key file others may read is accepted with a warning (a Kubernetes
   * Secret is mounted 0644 unless told otherwise).
   *
   * @throws BadInputException when the file is missing, unreadable, empty, shorter than {@link
   *     #MIN_KEY_BYTES} or longer than {@link #MAX_KEY_BYTES}
   */
  public static RecordAuth fromFile(Path file) {
    if (file == null) {
      return NONE;
    }
    byte[] key;
    try (InputStream in = Files.newInputStream(file)) {
      key = in.readNBytes(MAX_KEY_BYTES + 1);
    } catch (NoSuchFileException e) {
      throw new BadInputException("--auth-key-file " + file + " does not exist");
    } catch (AccessDeniedException e) {
      throw new BadInputException("--auth-key-file " + file + " is not readable (permission denied)");
    } catch (IOException e) {
      throw new BadInputException("--auth-key-file " + file + " cannot be read: " + e.getMessage(), e);
    }
    if (key.length == 0) {
      throw new BadInputException("--auth-key-file " + file + " is empty (make a key with: head -c 32 /dev/urandom > "
          + file + ")");
    }
    boolean pair = startsWith(key, (KEYS_FORMAT + "\n").getBytes(StandardCharsets.US_ASCII));
    if (!pair && key.length < MIN_KEY_BYTES) {
      throw new BadInputException("--auth-key-file " + file + " holds " + key.length + " bytes; a key needs at least "
          + MIN_KEY_BYTES + " (head -c 32 /dev/urandom > " + file + ")");
    }
    if (key.length > MAX_KEY_BYTES) {
      throw new BadInputException("--auth-key-file " + file + " is larger than " + MAX_KEY_BYTES
          + " bytes: not a key file");
    }
    warnIfOthersCanRead(file);
    RecordAuth auth = pair ? KeyPair.parse(file, new String(key, StandardCharsets.US_ASCII))
        : new RecordAuth(key);
    Arrays.fill(key, (byte) 0);
    LOG.info("records are signed and checked with the key of {} (key id {}{})", file, auth.keyId(),
        auth.previous == null ? "" : "; key id " + auth.previous.keyId() + " is accepted too");
    return auth;
  }

  private static boolean startsWith(byte[] bytes, byte[] prefix) {
    return bytes.length >= prefix.length && Arrays.equals(bytes, 0, prefix.length, prefix, 0, prefix.length);
  }

  /** This key, also accepting records signed with {@code previousKey} (key rotation). */
  static RecordAuth withKeys(byte[] key, byte[] previousKey) {
    RecordAuth older = withKey(previousKey);
    withKey(key); // checks the length
    return new RecordAuth(key.clone(), older);
  }

  private static void warnIfOthersCanRead(Path file) {
    try {
      Set<PosixFilePermission> p = Files.getPosixFilePermissions(file);
      if (p.contains(PosixFilePermission.OTHERS_READ) || p.contains(PosixFilePermission.GROUP_READ)) {
        LOG.warn("--auth-key-file {} can be read by other users (mode {}): anyone who reads it can forge records;"
            + " chmod 600 it", file, java.nio.file.attribute.PosixFilePermissions.toString(p));
      }
    } catch (IOException | UnsupportedOperationException e) {
      // not a POSIX file system: nothing to say
    }
  }

  /** True when a key is configured: records are signed and checked. */
  public boolean enabled() {
    return prototype != null;
  }

  /** Hex id of the key (4 bytes derived from it), "none" without a key; safe to log. */
  public String keyId() {
    return enabled() ? HexFormat.of().formatHex(keyId) : "none";
  }

  /** A record for {@code topic}, signed when a key is configured. */
  public ProducerRecord<String, byte[]> record(String topic, String key, byte[] value) {
    return sign(new ProducerRecord<>(topic, key, value));
  }

  /**
   * Adds the {@value #HEADER} header to {@code record} (replacing any there), when a key is
   * configured; returns the same record.
   */
  public ProducerRecord<String, byte[]> sign(ProducerRecord<String, byte[]> record) {
    if (!enabled()) {
      return record;
    }
    byte[] mac = mac(record.topic(), record.key(), record.value());
    byte[] header = new byte[KEY_ID_BYTES + MAC_BYTES];
    System.arraycopy(keyId, 0, header, 0, KEY_ID_BYTES);
    System.arraycopy(mac, 0, header, KEY_ID_BYTES, MAC_BYTES);
    Headers headers = record.headers();
    headers.remove(HEADER);
    headers.add(HEADER, header);
    return record;
  }

  /** Checks the MAC of a consumed record; always OK without a key. */
  public Verdict verify(ConsumerRecord<String, byte[]> record) {
    return verify(record.topic(), record.key(), record.value(), record.headers());
  }

  /** Checks the MAC of a record made of these parts; always OK without a key. */
  public Verdict verify(String topic, String key, byte[] value, Headers headers) {
    if (!enabled()) {
      return Verdict.OK;
    }
    Header h = headers == null ? null : headers.lastHeader(HEADER);
    if (h == null || h.value() == null) {
      return new Verdict(Status.MISSING, "no MAC (no " + HEADER + " header): not signed with the cluster's key");
    }
    byte[] v = h.value();
    if (v.length != KEY_ID_BYTES + MAC_BYTES) {
      return new Verdict(Status.BAD, "bad MAC: a " + v.length + "-byte " + HEADER + " header (expected "
          + (KEY_ID_BYTES + MAC_BYTES) + ")");
    }
    byte[] id = Arrays.copyOf(v, KEY_ID_BYTES);
    if (previous != null && !MessageDigest.isEqual(id, keyId) && MessageDigest.isEqual(id, previous.keyId)) {
      return previous.verify(topic, key, value, headers);
    }
    if (!MessageDigest.isEqual(id, keyId)) {
      return new Verdict(Status.BAD, "bad MAC: signed with key id " + HexFormat.of().formatHex(id)
          + ", this role's key is " + keyId() + " (is --auth-key-file the same file on every role?)");
    }
    byte[] expected = mac(topic, key, value);
    byte[] got = Arrays.copyOfRange(v, KEY_ID_BYTES, v.length);
    if (!MessageDigest.isEqual(expected, got)) {
      return new Verdict(Status.BAD, "bad MAC: the MAC does not match topic, key and value (altered, or moved from"
          + " another topic or key)");
    }
    return Verdict.OK;
  }

  /** HMAC-SHA256 over DOMAIN | len topic | topic | len key | key | len value | value (-1: null). */
  private byte[] mac(String topic, String key, byte[] value) {
    Mac mac = macs.get();
    mac.reset();
    mac.update(DOMAIN);
    field(mac, topic == null ? null : topic.getBytes(StandardCharsets.UTF_8));
    field(mac, key == null ? null : key.getBytes(StandardCharsets.UTF_8));
    field(mac, value);
    return mac.doFinal();
  }

  private static void field(Mac mac, byte[] bytes) {
    mac.update(ByteBuffer.allocate(4).putInt(bytes == null ? -1 : bytes.length).array());
    if (bytes != null) {
      mac.update(bytes);
    }
  }

  @Override
  public String toString() {
    return "RecordAuth[key id " + keyId() + "]"; // never the key
  }
}
