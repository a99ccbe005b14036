#!/usr/bin/env bash
# NBD reading: zcow's client alone (io.zcow.bench.NbdRead) against `nbdcopy EXPORT null:` with the
# same connections, requests in flight and request size, both reading every byte of a fully
# allocated export; then `zcow convert` from the export against `qemu-img convert -c` (zstd) from
# it, on a real ext4 disk. The exports are qemu-nbd over a Unix socket. Medians and ratios; see
# bench/README.md.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
REPO=$(cd "$BENCH_DIR/.." && pwd)

SIZE=2G
RUNS=5
CONNECTIONS=$(nproc)
REQUESTS=4
REQUEST_SIZE=1M
WORK="$BENCH_DIR/target/nbd-vs-nbdcopy"
ZCOW=${ZCOW:-"$REPO/zcow"}

usage() {
  cat <<EOF
usage: $0 [--size 2G] [--runs 5] [--connections N] [--requests N] [--request-size 1M] [--work DIR]

  --size SIZE          size of the exported disk (default $SIZE)
  --runs N             rounds, each running every tool once in rotating order (default $RUNS)
  --connections N      NBD connections (= reading threads) for both readers (default nproc = $CONNECTIONS)
  --requests N         requests in flight per connection (default $REQUESTS)
  --request-size SIZE  bytes per request (default $REQUEST_SIZE)
  --work DIR           disks, sockets, outputs and logs (default bench/target/nbd-vs-nbdcopy)

  ZCOW=CMD             zcow command for the convert runs (default: ./zcow at the repository root)
EOF
}

die() { echo "nbd-vs-nbdcopy: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --connections) CONNECTIONS=${2:?}; shift 2 ;;
    --requests) REQUESTS=${2:?}; shift 2 ;;
    --request-size) REQUEST_SIZE=${2:?}; shift 2 ;;
    --work) WORK=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, was '$RUNS'"
[[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ ]] || die "--connections must be a positive integer, was '$CONNECTIONS'"
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ ]] || die "--requests must be a positive integer, was '$REQUESTS'"
SIZE_BYTES=$(size_bytes "$SIZE") || die "--size: cannot read '$SIZE'"
REQ_BYTES=$(size_bytes "$REQUEST_SIZE") || die "--request-size: cannot read '$REQUEST_SIZE'"

for t in qemu-img qemu-nbd nbdcopy numfmt awk; do
  find_tool "$t" >/dev/null || die "$t not found (apt-get install qemu-utils libnbd-bin coreutils gawk)"
done
zcow_command nbd-vs-nbdcopy || exit 2

mkdir -p "$WORK/logs"
WORK=$(cd "$WORK" && pwd)
(cd "$REPO" && mvn -q -B -Dstyle.color=never -DskipTests -pl cli,bench -am package >&2)
CP="$REPO/cli/target/zcow.jar:$REPO/bench/target/classes"

# The disks: an ext4 file system of system files (sparse, for the conversions) and a fully
# allocated copy (for reading: every byte crosses the socket, and nbdcopy cannot skip any).
ext4_disk "" "$WORK/disk-ext4-$SIZE_BYTES.raw" "$SIZE_BYTES"
FULL="$WORK/disk-full-$SIZE_BYTES.raw"
[ -f "$FULL" ] || cp --sparse=never "$DISK" "$FULL"

PIDS=()
stop_servers() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop_servers EXIT

# serve FILE NAME: a read-only qemu-nbd export over a Unix socket serving up to 16 clients; sets URI.
serve() {
  local sock="$WORK/$2.sock" pid="$WORK/$2.pid"
  rm -f "$sock" "$pid"
  qemu-nbd -r -t -e 16 -f raw -x disk -k "$sock" --fork --pid-file "$pid" "$1"
  PIDS+=("$(cat "$pid")")
  URI="nbd+unix:///disk?socket=$sock"
}
serve "$FULL" full
FULL_URI=$URI
serve "$DISK" ext4
EXT4_URI=$URI

now() { date +%s.%N; }
declare -A SECS
declare -A CPU
declare -A SIZES
# CPU seconds (user + system) of the reading clients: on a shared machine a steadier figure than
# their wall times. zcow's is NbdRead's own (its process while it read); nbdcopy's from GNU time.
GNU_TIME=$( [ -x /usr/bin/time ] && echo /usr/bin/time || true)

record() { SECS[$1]="${SECS[$1]:-} $(awk -v a="$2" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')"; }

run_read() {
  local tool=$1 t0
  drop_caches
  t0=$(now)
  case "$tool" in
    zcow-read)
      # NbdRead's own clock: the JVM's start-up (about 0.2 s) is not reading, and a worker pays it once.
      local line
      line=$(java -cp "$CP" io.zcow.bench.NbdRead "$FULL_URI" "$CONNECTIONS" "$REQUESTS" "$REQ_BYTES" 2>> "$WORK/logs/$tool.log")
      echo "$line" >> "$WORK/logs/$tool.log"
      SECS[$tool]="${SECS[$tool]:-} $(echo "$line" | awk '{ print $2 }')"
      CPU[$tool]="${CPU[$tool]:-} $(echo "$line" | awk '{ print $4 }')" ;;
    nbdcopy)
      local timed=()
      [ -n "$GNU_TIME" ] && timed=("$GNU_TIME" -o "$WORK/logs/nbdcopy.cpu" -f "%U %S")
      "${timed[@]}" nbdcopy --no-extents --connections="$CONNECTIONS" --requests="$REQUESTS" \
        --request-size="$REQ_BYTES" "$FULL_URI" null: >> "$WORK/logs/$tool.log" 2>&1
      record "$tool" "$t0"
      CPU[$tool]="${CPU[$tool]:-} $( [ -n "$GNU_TIME" ] && awk '{ printf "%.3f", $1 + $2 }' "$WORK/logs/nbdcopy.cpu" || echo '?')" ;;
  esac
}

run_convert() {
  local tool=$1 out="$WORK/out-$1.qcow2" t0
  rm -f "$out"
  drop_caches
  t0=$(now)
  case "$tool" in
    zcow-convert) "${ZCOW_CMD[@]}" convert --progress none --threads "$(nproc)" "$EXT4_URI" "$out" \
                    >> "$WORK/logs/$tool.log" 2>&1 ;;
    qemu-convert) qemu-img convert -c -f raw -O qcow2 -o compression_type=zstd "$EXT4_URI" "$out" \
                    >> "$WORK/logs/$tool.log" 2>&1 ;;
  esac
  record "$tool" "$t0"
  SIZES[$tool]=$(stat -c %s "$out")
}

# JIT, launcher build and page cache warm-up, not timed.
java -cp "$CP" io.zcow.bench.NbdRead "$FULL_URI" "$CONNECTIONS" "$REQUESTS" "$REQ_BYTES" > /dev/null
"${ZCOW_CMD[@]}" convert --progress none --force "$EXT4_URI" "$WORK/warm.qcow2" > /dev/null
rm -f "$WORK/warm.qcow2"

READERS=(zcow-read nbdcopy)
CONVERTERS=(zcow-convert qemu-convert)
for ((r = 0; r < RUNS; r++)); do
  for ((i = 0; i < 2; i++)); do
    run_read "${READERS[$(((r + i) % 2))]}"
  done
  for ((i = 0; i < 2; i++)); do
    run_convert "${CONVERTERS[$(((r + i) % 2))]}"
  done
  echo "round $((r + 1))/$RUNS done"
done

qemu-img compare -f raw -F qcow2 "$DISK" "$WORK/out-zcow-convert.qcow2" > "$WORK/logs/compare.log" 2>&1 \
  || die "zcow's image differs from the disk: $WORK/logs/compare.log"

mbs() { awk -v s="$1" -v b="$SIZE_BYTES" 'BEGIN { printf "%.1f", b / s / 1e6 }'; }
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);" \
     "$(qemu-nbd --version | head -n 1); $(nbdcopy --version | head -n 1); $(java -version 2>&1 | head -n 1)"
echo "reading $(mib "$SIZE_BYTES") MiB (fully allocated) over a Unix socket: $CONNECTIONS connections," \
     "$REQUESTS requests of $(mib "$REQ_BYTES") MiB in flight each; median of $RUNS (s: ${SECS[zcow-read]} / ${SECS[nbdcopy]})"
echo "  CPU s of the client (zcow: while reading; nbdcopy: whole process): ${CPU[zcow-read]} / ${CPU[nbdcopy]}"
zr=$(median "${SECS[zcow-read]}"); nc=$(median "${SECS[nbdcopy]}")
printf '  %-14s %8.3f s  %8s MB/s  %6s CPU s\n' zcow-read "$zr" "$(mbs "$zr")" "$(median "${CPU[zcow-read]}")"
printf '  %-14s %8.3f s  %8s MB/s  %6s CPU s\n' nbdcopy "$nc" "$(mbs "$nc")" "$(median "${CPU[nbdcopy]}")"
echo "  zcow reading / nbdcopy throughput: $(ratio "$nc" "$zr")"
echo "converting the $(mib "$SIZE_BYTES") MiB ext4 disk from the export (zstd, $(nproc) threads): median of $RUNS"
zc=$(median "${SECS[zcow-convert]}"); qc=$(median "${SECS[qemu-convert]}")
printf '  %-14s %8.3f s  %8s MiB out\n' zcow-convert "$zc" "$(mib "${SIZES[zcow-convert]}")"
printf '  %-14s %8.3f s  %8s MiB out\n' qemu-convert "$qc" "$(mib "${SIZES[qemu-convert]}")"
echo "  zcow convert speed / qemu-img convert speed: $(ratio "$qc" "$zc")"
