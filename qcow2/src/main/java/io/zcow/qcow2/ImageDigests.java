package io.zcow.qcow2;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.MessageDigest;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link ImageWriter}'s side of the digest manifest: records the digest of every cluster it
 * accepts (given by the caller, who read the cluster, or else computed from the payload), carries
 * the backing file's digests over for unchanged clusters, and seals and publishes the manifest
 * just before the image is renamed. An overlay on a backing file without a usable manifest gets
 * none (logged): its digests of unchanged clusters are not known. Thread safe.
 */
final class ImageDigests {
  private static final Logger LOG = LoggerFactory.getLogger(ImageDigests.class);

  private final ManifestWriter manifest; // null: this image gets no manifest
  private final ManifestReader backing; // the backing file's, for unchanged clusters; null without one
  private final ImageOptions options;
  private final ThreadLocal<MessageDigest> sha = ThreadLocal.withInitial(Manifest::sha256);
  private final ThreadLocal<PayloadDecoder> decoders;
  private final ThreadLocal<ByteBuffer> scratch;

  private ImageDigests(ManifestWriter manifest, ManifestReader backing, ImageOptions options) {
    this.manifest = manifest;
    this.backing = backing;
    this.options = options;
    int cs = options.geometry().clusterSize();
    this.decoders = ThreadLocal.withInitial(() -> new PayloadDecoder(cs));
    this.scratch = ThreadLocal.withInitial(() -> ByteBuffer.allocate(cs));
  }

  /** For a new image at {@code target}; {@code resume}: for one reopened from a checkpoint. */
  static ImageDigests open(Path target, ImageOptions options, boolean resume) {
    ManifestReader prev = null;
    if (options.backing() != null) {
      Path prevImage = target.toAbsolutePath().getParent().resolve(options.backing().name());
      String[] why = new String[1];
      prev = ManifestReader.openIfUsable(prevImage, why);
      if (prev == null) {
        LOG.warn("[target={}] no digest manifest for this overlay: {}", target.getFileName(), why[0]);
        return new ImageDigests(null, null, options);
      }
    }
    ManifestWriter w = resume ? ManifestWriter.resume(target, options.geometry())
        : ManifestWriter.create(target, options.geometry());
    if (w == null) {
      LOG.warn("[target={}] resumed without a digest manifest part: this image gets none", target.getFileName());
      if (prev != null) {
        prev.close();
      }
    }
    return new ImageDigests(w, w == null ? null : prev, options);
  }

  /** A cluster the image accepted: its digest, or null to compute it from the payload. */
  void accepted(long guestCluster, ClusterKind kind, ByteBuffer payload, byte[] digest) {
    if (manifest == null) {
      return;
    }
    byte[] d = digest;
    if (d == null) {
      ByteBuffer cluster = payload;
      if (kind == ClusterKind.COMPRESSED) {
        cluster = scratch.get().clear();
        decoders.get().decode(options.codec(), payload, cluster, "guest cluster " + guestCluster);
      }
      d = Manifest.digest(sha.get(), cluster);
    }
    manifest.put(guestCluster, d);
  }

  /** Clusters left to the backing file: their digests are the backing file's. */
  void unchanged(long first, long count) {
    if (manifest != null) {
      manifest.copy(backing, first, count);
    }
  }

  void force() {
    if (manifest != null) {
      manifest.force();
    }
  }

  /** The image at {@code finishedPart} is complete and durable: seal and publish its manifest. */
  void publish(Path finishedPart) {
    if (manifest != null) {
      manifest.seal(ImageIdentity.of(finishedPart));
      manifest.publish();
    }
    closeBacking();
  }

  void close() {
    if (manifest != null) {
      manifest.close();
    }
    closeBacking();
  }

  void abort() {
    if (manifest != null) {
      manifest.abort();
    }
    closeBacking();
  }

  private void closeBacking() {
    if (backing != null) {
      backing.close();
    }
  }
}
