#!/usr/bin/env bash
# Worker compression per thread against the zstd CLI on the same data in the same run:
# RangeCompressor (zero detection + zstd level 3 per 64 KiB cluster, one thread) against
# `zstd -b3 -B65536 -T1` (the CLI's in-memory benchmark, 64 KiB blocks, one thread).
# usage: bench/worker-vs-zstd.sh [--source RAW] [--size 1G] [--rounds 3]
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
REPO=$(cd "$BENCH_DIR/.." && pwd)
SOURCE="" SIZE=1G ROUNDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --source) SOURCE=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "worker-vs-zstd: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v zstd >/dev/null || { echo "worker-vs-zstd: zstd not found (apt-get install zstd)" >&2; exit 2; }
WORK="$BENCH_DIR/target/worker-vs-zstd"
mkdir -p "$WORK"
if [ -z "$SOURCE" ]; then
  # The first SIZE of the convert benchmark's ext4 disk, or a fresh ext4 disk of system files.
  big=$(ls "$BENCH_DIR"/target/convert-vs-qemu/disk-ext4-*.raw 2>/dev/null | head -n 1 || true)
  SOURCE="$WORK/sample.raw"
  if [ ! -f "$SOURCE" ]; then
    if [ -n "$big" ]; then
      head -c "$(size_bytes "$SIZE")" "$big" > "$SOURCE"
    else
      stage=$(mktemp -d); cp -a /usr/share/doc /usr/lib/jvm "$stage"/ 2>/dev/null || true
      mkfs.ext4 -q -d "$stage" "$SOURCE" "$SIZE"; rm -rf "$stage"
    fi
  fi
fi
(cd "$REPO" && mvn -q -B -Dstyle.color=never -DskipTests -pl cli,bench -am package >&2)
CP="$REPO/cli/target/zcow.jar:$REPO/bench/target/classes"
cat "$SOURCE" > /dev/null   # both read from the page cache
echo "data: $SOURCE ($(du -h --apparent-size "$SOURCE" | cut -f1)); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
zs=() ws=()
for r in $(seq "$ROUNDS"); do
  z=$(zstd -b3 -B65536 -T1 -i3 "$SOURCE" 2>&1 | tr '\r' '\n' | grep -oE '[0-9.]+ MB/s' | head -n 1 | cut -d' ' -f1)
  w=$(java -cp "$CP" io.zcow.bench.CompressThroughput "$SOURCE" 3 65536 3 | awk '/^median/{print $2}')
  echo "round $r: zstd -b3 -B65536 -T1 $z MB/s   zcow RangeCompressor (1 thread) $w MB/s"
  zs+=("$z"); ws+=("$w")
done
zm=$(median "${zs[*]}"); wm=$(median "${ws[*]}")
echo "median: zstd $zm MB/s, worker $wm MB/s, ratio $(awk -v w="$wm" -v z="$zm" 'BEGIN{printf "%.2f", w/z}')"
