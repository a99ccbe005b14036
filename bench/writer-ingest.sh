#!/usr/bin/env bash
# Writer ingest against dd with O_DIRECT, same file system, same run: the chunks of a disk are
# preloaded into an embedded broker, a writer alone drains them into a direct-mode image (see
# WriterIngest.java); dd then writes as many bytes with oflag=direct bs=1M next to it.
# usage: bench/writer-ingest.sh [--source RAW] [--rounds 3]
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
REPO=$(cd "$BENCH_DIR/.." && pwd)
SOURCE="" ROUNDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --source) SOURCE=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "writer-ingest: unknown argument $1" >&2; exit 2 ;;
  esac
done
WORK="$BENCH_DIR/target/writer-ingest"
mkdir -p "$WORK"
if [ -z "$SOURCE" ]; then
  SOURCE=$(ls "$BENCH_DIR"/target/convert-vs-qemu/disk-ext4-*.raw 2>/dev/null | head -n 1 || true)
  [ -n "$SOURCE" ] || { echo "writer-ingest: no source: run convert-vs-qemu.sh first or pass --source" >&2; exit 2; }
fi
(cd "$REPO" && mvn -q -B -Dstyle.color=never -DskipTests -pl cli,bench -am package >&2)
CP="$REPO/cli/target/zcow.jar:$REPO/bench/target/classes"
echo "data: $SOURCE; machine: $(nproc) cores; file system of $WORK: $(df -T "$WORK" | awk 'NR==2{print $2}')"
ws=() ds=()
for r in $(seq "$ROUNDS"); do
  out=$(java -cp "$CP" io.zcow.bench.WriterIngest "$SOURCE" "$WORK" 2>/dev/null)
  bytes=$(awk '/^image-bytes/{print $2}' <<<"$out"); w=$(awk '/^writer-mbps/{print $2}' <<<"$out")
  mib=$(( (bytes + 1048575) / 1048576 ))
  d=$(dd if=/dev/zero of="$WORK/dd.bin" bs=1M count="$mib" oflag=direct 2>&1 | awk -F, '/copied/{print $NF}' | awk '{v=$1; u=$2; if (u=="GB/s") v*=1000; print v}')
  rm -f "$WORK/dd.bin"
  echo "round $r: writer $w MB/s (image $mib MiB)   dd oflag=direct bs=1M $d MB/s"
  ws+=("$w"); ds+=("$d")
done
wm=$(median "${ws[*]}"); dm=$(median "${ds[*]}")
echo "median: writer $wm MB/s, dd $dm MB/s, ratio $(awk -v w="$wm" -v d="$dm" 'BEGIN{printf "%.2f", w/d}')"
