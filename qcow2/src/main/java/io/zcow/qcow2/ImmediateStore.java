package io.zcow.qcow2;

import java.nio.ByteBuffer;

/**
 * The ablation of the cluster-fill cache ({@code --write-cache off}): every extent is written the
 * moment it is filled. Through the page cache that is a small unaligned write; under O_DIRECT it is
 * a read-modify-write of the aligned blocks around it, serialized (two payloads may share a
 * block). This is what QEMU did without its proposed cache, kept so the benefit can be measured.
 */
final class ImmediateStore implements ClusterStore {
  private final DirectFile file;
  private final Object rmw = new Object();

  ImmediateStore(DirectFile file) {
    this.file = file;
  }

  @Override
  public void open(long hostCluster, boolean packed) {}

  @Override
  public void allocate(long hostCluster, int bytes) {}

  @Override
  public void close(long hostCluster) {}

  @Override
  public void fill(long hostOffset, ByteBuffer src) {
    if (file.isDirect()) {
      synchronized (rmw) {
        AlignedIo.write(file, hostOffset, src);
      }
    } else {
      file.write(src, hostOffset);
    }
  }

  @Override
  public void flush() {
    file.force();
  }

  @Override
  public void read(long hostOffset, ByteBuffer dst) {
    synchronized (rmw) {
      AlignedIo.read(file, hostOffset, dst);
    }
  }

  @Override
  public int capacityClusters() {
    return Integer.MAX_VALUE;
  }

  @Override
  public void close() {}
}
