package io.zcow.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.BadInputException;
import io.zcow.TargetIoException;
import io.zcow.testkit.QemuImg;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Digest manifests written beside every image by {@link ImageWriter}: one SHA-256 per guest
 * cluster (zero clusters marked), an overlay's covering the whole disk, bound to the image they
 * belong to, published before the image and recovered after a crash between the two renames.
 */
class ManifestTest {
  private static final int CS = 65536;
  private static final long MIB = 1L << 20;
  @TempDir Path dir;

  @Test
  void everyImageGetsTheDigestOfEachClusterAndAnOverlaysCoversTheWholeDisk() throws Exception {
    Path disk0 = RealImages.raw(dir, 1);
    Path full = dir.resolve("full.qcow2");
    writeFull(disk0, full, 2);
    assertEntries(disk0, full);
    assertFalse(Files.exists(Manifest.partOf(full)), "the manifest's part file is gone");

    QemuImg.assumeAvailable();
    Path disk1 = Files.copy(disk0, dir.resolve("disk1.raw"));
    RealImages.poke(disk1, 3 * CS + 100, new byte[] {1, 2, 3});
    RealImages.poke(disk1, 8 * MIB, new byte[CS]); // a data cluster now zeros
    RealImages.poke(disk1, Files.size(disk1) - 700, new byte[] {9}); // the partial last cluster
    Path inc = dir.resolve("inc.qcow2");
    TreeSet<Long> changed = OverlayWriterTest.writeOverlay(full, disk0, disk1, inc);
    assertEquals(3, changed.size(), changed.toString());
    QemuImg.assertOverlay(disk1, inc, CS, changed);
    assertEntries(disk1, inc); // the unchanged clusters' digests carried over from full's manifest
  }

  @Test
  void aManifestIsRefusedInOneLineWhenItIsMissingDamagedOrNoLongerMatchesItsImage() throws Exception {
    QemuImg.assumeAvailable();
    Path disk = RealImages.raw(dir, 2);
    Path image = dir.resolve("full.qcow2");
    writeFull(disk, image, 1);
    Path manifest = Manifest.pathOf(image);
    byte[] good = Files.readAllBytes(manifest);

    RealImages.poke(manifest, 30, new byte[] {7});
    assertRefused(image, "damaged header");
    Files.write(manifest, java.util.Arrays.copyOf(good, good.length - 32));
    assertRefused(image, "bytes, not");
    Files.delete(manifest);
    assertRefused(image, "has no digest manifest");
    Files.write(manifest, good);
    ManifestReader.open(image).close();

    // What qemu-img commit does to a previous image: QEMU writes clusters of it.
    QemuImg.io(image, "write -P 0x61 1M 4k");
    assertRefused(image, "does not match");
  }

  @Test
  void aCrashBetweenTheManifestAndTheImageRenamesIsRecoveredByTheResumedWriter() throws Exception {
    Path disk = RealImages.raw(dir, 3);
    Path target = dir.resolve("crash.qcow2");
    ImageOptions o = options(disk);
    ImageWriter w = ImageWriter.create(target, o);
    ImageFeeder.feed(w, ImageFeeder.entries(disk, CS, 3), 5, 2);
    Checkpoint cp = w.checkpoint();
    // The image's rename fails (a directory in the way), after the manifest's: what a crash
    // between the two leaves on disk.
    Files.createDirectories(target.resolve("in-the-way"));
    assertThrows(TargetIoException.class, w::finish);
    w.close();
    assertTrue(Files.exists(Manifest.pathOf(target)), "the manifest was published first");
    assertTrue(Files.exists(ImageWriter.partPath(target)), "the image is still its .part");
    assertFalse(Files.exists(Manifest.partOf(target)));

    Files.delete(target.resolve("in-the-way"));
    Files.delete(target);
    ImageWriter resumed = ImageWriter.resume(target, o, cp);
    assertFalse(Files.exists(Manifest.pathOf(target)), "taken back as the resumed image's part");
    resumed.finish();
    assertEntries(disk, target);
    QemuImg.assumeAvailable();
    QemuImg.assertClean(target);
    QemuImg.assertIdentical(disk, target);
  }

  @Test
  void aSparseSourceJustUnder16TiBGetsASparseManifestReadInBoundedSpans() throws Exception {
    long size = (16L << 40) - 4096 + 512; // a partial last cluster
    ImageGeometry g = ImageGeometry.forSource(size, CS);
    Path target = dir.resolve("huge.qcow2");
    ImageWriter w = ImageWriter.create(target, ImageOptions.defaults(g).withCacheBytes(8L * CS));
    byte[] first = RealImages.readRaw(RealImages.raw(dir, 4), 8 * MIB, CS); // random: stored raw
    byte[] last = new byte[CS];
    last[100] = 42;
    long lastCluster = g.guestClusters() - 1;
    w.put(0, ClusterKind.RAW, ByteBuffer.wrap(first));
    w.putZeros(1, lastCluster - 1);
    w.put(lastCluster, ClusterKind.RAW, ByteBuffer.wrap(last));
    w.finish();

    Path manifest = Manifest.pathOf(target);
    assertEquals(Manifest.HEADER_BYTES + g.guestClusters() * Manifest.DIGEST_BYTES, Files.size(manifest));
    assertTrue(allocatedBytes(manifest) < (1 << 20), "sparse: " + allocatedBytes(manifest) + " bytes allocated");
    try (ManifestReader r = ManifestReader.open(target)) {
      assertEquals(g.guestClusters(), r.clusters());
      byte[] e = new byte[4 * Manifest.DIGEST_BYTES];
      r.read(0, 1, e);
      assertArrayEquals(Manifest.digest(Manifest.sha256(), ByteBuffer.wrap(first)), java.util.Arrays.copyOf(e, 32));
      r.read(lastCluster - 2, 4, e); // the last, and one past the end: zero
      assertTrue(Manifest.isZero(e, 0) && Manifest.isZero(e, 32) && Manifest.isZero(e, 96));
      assertArrayEquals(Manifest.digest(Manifest.sha256(), ByteBuffer.wrap(last)),
          java.util.Arrays.copyOfRange(e, 64, 96));
    }
  }

  private static long allocatedBytes(Path p) throws IOException {
    Process stat = new ProcessBuilder("stat", "-c", "%b", p.toString()).start();
    return Long.parseLong(new String(stat.getInputStream().readAllBytes()).strip()) * 512; // st_blocks
  }

  private static void assertRefused(Path image, String expected) {
    BadInputException e = assertThrows(BadInputException.class, () -> ManifestReader.open(image));
    assertTrue(e.getMessage().contains(expected), e.getMessage());
    assertTrue(e.getMessage().contains(ManifestReader.FIX), e.getMessage());
    assertEquals(1, e.getMessage().lines().count(), e.getMessage());
  }

  private static ImageOptions options(Path raw) throws IOException {
    return ImageOptions.defaults(ImageGeometry.forSource(Files.size(raw), CS)).withRangeBytes(4 * MIB);
  }

  private static void writeFull(Path raw, Path image, int threads) throws Exception {
    ImageWriter w = ImageWriter.create(image, options(raw));
    ImageFeeder.feed(w, ImageFeeder.entries(raw, CS, 3), 11, threads);
    w.finish();
  }

  /** The image's manifest opens (it matches the image) and holds the digest of each cluster of {@code raw}. */
  static void assertEntries(Path raw, Path image) throws IOException {
    MessageDigest sha = Manifest.sha256();
    try (ManifestReader r = ManifestReader.open(image); FileChannel ch = FileChannel.open(raw)) {
      long clusters = (ch.size() + CS - 1) / CS;
      assertEquals(clusters, r.clusters());
      byte[] entry = new byte[Manifest.DIGEST_BYTES];
      ByteBuffer cluster = ByteBuffer.allocate(CS);
      for (long c = 0; c < clusters; c++) {
        java.util.Arrays.fill(cluster.array(), (byte) 0);
        cluster.clear();
        while (cluster.hasRemaining() && ch.read(cluster, c * CS + cluster.position()) > 0) {
          // the last cluster reads short; its rest stays zero
        }
        r.read(c, 1, entry);
        byte[] expected = ImageFeeder.isZero(cluster.array()) ? new byte[Manifest.DIGEST_BYTES]
            : Manifest.digest(sha, cluster.clear());
        assertArrayEquals(expected, entry, "cluster " + c + " of " + image);
      }
    }
  }
}
