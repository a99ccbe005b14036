#!/usr/bin/env bash
# Side by side: `zcow backup` (the distributed path on its embedded cluster of one: Kafka broker,
# ZooKeeper, writer and workers in one process) against `zcow convert` (the same compression and
# writer without the messaging) and `qemu-img convert -c` (zstd, writeback), on the same raw disk.
# Prints medians, ratios to qemu-img and to convert, output sizes. See bench/README.md.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
REPO=$(cd "$BENCH_DIR/.." && pwd)

RUNS=3
SIZE=1G
WORK="$BENCH_DIR/target/backup-vs-qemu"
SOURCE=""
KEEP=0
ZCOW=${ZCOW:-"$REPO/zcow"}

usage() {
  cat <<USAGE
usage: $0 [--runs 3] [--source RAW] [--size 1G] [--work DIR] [--keep]

  --runs N       rounds; each round runs every tool once, in rotating order (default $RUNS)
  --source RAW   the raw disk to back up. Default: the disk convert-vs-qemu.sh made
                 (bench/target/convert-vs-qemu/disk-ext4-*.raw, the largest), else a --size
                 ext4 disk made here with mkfs.ext4 -d /usr/share
  --size SIZE    size of a disk made here (default $SIZE)
  --work DIR     outputs and logs (default bench/target/backup-vs-qemu)
  --keep         keep the output images (default: deleted at the end)

  ZCOW=CMD       zcow command to run (default: ./zcow at the repository root); may hold arguments
USAGE
}

die() { echo "backup-vs-qemu: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
    --source) SOURCE=${2:?--source needs a value}; shift 2 ;;
    --size) SIZE=${2:?--size needs a value}; shift 2 ;;
    --work) WORK=${2:?--work needs a value}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, was '$RUNS'"
command -v qemu-img >/dev/null 2>&1 || die "qemu-img not found (apt-get install qemu-utils)"
zcow_command backup-vs-qemu || exit 2

mkdir -p "$WORK/logs"
WORK=$(cd "$WORK" && pwd)


if [ -z "$SOURCE" ]; then
  SOURCE=$(ls -S "$BENCH_DIR"/target/convert-vs-qemu/disk-ext4-*.raw 2>/dev/null | head -n 1 || true)
fi
if [ -z "$SOURCE" ]; then
  bytes=$(size_bytes "$SIZE") || die "--size: cannot read '$SIZE'"
  SOURCE="$WORK/disk-ext4-$bytes.raw"
  if [ ! -f "$SOURCE" ]; then
    mkfs=$(command -v mkfs.ext4 || echo /sbin/mkfs.ext4)
    [ -x "$mkfs" ] || die "mkfs.ext4 not found (apt-get install e2fsprogs), or give --source"
    echo "disk: making a $SIZE ext4 disk from /usr/share in $SOURCE"
    "$mkfs" -q -F -d /usr/share "$SOURCE.tmp" "$((bytes / 1024))" > "$WORK/logs/mkfs.log" 2>&1 \
      || die "mkfs.ext4 failed (too little room for /usr/share? try a larger --size): $(tail -n 1 "$WORK/logs/mkfs.log")"
    mv -f -- "$SOURCE.tmp" "$SOURCE"
  fi
fi
[ -f "$SOURCE" ] || [ -b "$SOURCE" ] || die "source $SOURCE is not a file or block device"
SOURCE=$(readlink -f "$SOURCE")
SOURCE_BYTES=$(blockdev --getsize64 "$SOURCE" 2>/dev/null || stat -c %s "$SOURCE")

TOOLS=(backup convert qemu-img)
target_of() { echo "$WORK/out-$1.qcow2"; }

command_of() {
  local tool=$1 target
  target=$(target_of "$tool")
  case "$tool" in
    backup) CMD=("${ZCOW_CMD[@]}" backup --progress none --force "$SOURCE" "$target") ;;
    convert) CMD=("${ZCOW_CMD[@]}" convert --progress none --force "$SOURCE" "$target") ;;
    qemu-img) CMD=(qemu-img convert -c -f raw -O qcow2 -o compression_type=zstd -m 8 -W -t writeback
                   "$SOURCE" "$target") ;;
  esac
}

DROP=1

declare -A TIMES SIZES FAILED VERIFIED
for t in "${TOOLS[@]}"; do TIMES[$t]=""; SIZES[$t]=""; FAILED[$t]=0; VERIFIED[$t]=""; done

verify() {
  local tool=$1 target
  target=$(target_of "$tool")
  if qemu-img compare -f raw -F qcow2 "$SOURCE" "$target" > "$WORK/logs/verify-$tool.log" 2>&1 \
     && qemu-img check -f qcow2 "$target" >> "$WORK/logs/verify-$tool.log" 2>&1; then
    VERIFIED[$tool]="identical, check clean"
  else
    VERIFIED[$tool]="FAILED (see $WORK/logs/verify-$tool.log)"
  fi
  echo "verify: $tool output ${VERIFIED[$tool]}"
}

run_one() {
  local tool=$1 round=$2 target log status=0 t0 t1 secs size
  target=$(target_of "$tool")
  log="$WORK/logs/$tool-$round.log"
  command_of "$tool"
  rm -f -- "$target"
  drop_caches
  t0=$(date +%s%N)
  "${CMD[@]}" > "$log" 2>&1 || status=$?
  t1=$(date +%s%N)
  if [ "$status" -ne 0 ] || [ ! -f "$target" ]; then
    FAILED[$tool]=$(( ${FAILED[$tool]} + 1 ))
    echo "run $round $tool: FAILED (exit $status), last lines of $log:" >&2
    tail -n 5 "$log" | sed 's/^/  /' >&2
    return 0
  fi
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  size=$(stat -c %s "$target")
  TIMES[$tool]+="$secs "
  SIZES[$tool]+="$size "
  printf 'run %d %-9s %8.2f s  %8.1f MB/s  out %9s MiB\n' "$round" "$tool" "$secs" \
    "$(awk -v s="$SOURCE_BYTES" -v t="$secs" 'BEGIN { print s / t / 1e6 }')" "$(mib "$size")"
  if [ "$tool" != qemu-img ] && [ -z "${VERIFIED[$tool]}" ]; then
    verify "$tool"
  fi
}


# The ./zcow launcher rebuilds its jar when a source is newer: do that now, not in a timed run.
"${ZCOW_CMD[@]}" --version > "$WORK/logs/version.log" 2>&1 || die "zcow --version failed: $(tail -n 3 "$WORK/logs/version.log")"

echo "source: $SOURCE ($(mib "$SOURCE_BYTES") MiB, $(mib "$(( $(stat -c %b "$SOURCE") * $(stat -c %B "$SOURCE") ))") MiB allocated)"
echo "zcow: ${ZCOW_CMD[*]}  runs: $RUNS  cores: $(nproc)  work: $WORK"
echo

for round in $(seq 1 "$RUNS"); do
  for i in 0 1 2; do
    run_one "${TOOLS[$(( (i + round - 1) % 3 ))]}" "$round"
  done
done

echo
q_time=$(median "${TIMES[qemu-img]}")
c_time=$(median "${TIMES[convert]}")
q_size=$(median "${SIZES[qemu-img]}")
printf '%-9s %10s %10s %12s %10s %10s\n' tool "median s" "MB/s" "vs qemu-img" "vs convert" "out MiB" 
for t in "${TOOLS[@]}"; do
  if [ -z "${TIMES[$t]}" ]; then
    printf '%-9s all %d runs FAILED\n' "$t" "${FAILED[$t]}"
    continue
  fi
  m=$(median "${TIMES[$t]}")
  printf '%-9s %10.2f %10.1f %12s %10s %10s\n' "$t" "$m" \
    "$(awk -v s="$SOURCE_BYTES" -v t="$m" 'BEGIN { print s / t / 1e6 }')" \
    "$(ratio "$m" "$q_time")" "$(ratio "$m" "$c_time")" "$(mib "$(median "${SIZES[$t]}")")"
  [ "${FAILED[$t]}" -eq 0 ] || echo "  ($t failed ${FAILED[$t]} of $RUNS runs; logs in $WORK/logs)"
done
echo "(median of $RUNS runs; ratios are time / qemu-img time and time / zcow convert time;"
echo " backup's time includes starting and stopping its embedded Kafka broker and ZooKeeper;"
echo " page cache dropped before each run: $([ "$DROP" -eq 1 ] && echo yes || echo NO); qemu-img out $(mib "$q_size") MiB)"
echo "zcow backup output: ${VERIFIED[backup]:-not verified}; zcow convert output: ${VERIFIED[convert]:-not verified}"

if [ "$KEEP" -eq 0 ]; then
  for t in "${TOOLS[@]}"; do rm -f -- "$(target_of "$t")"; done
fi

status=0
for t in "${TOOLS[@]}"; do [ "${FAILED[$t]}" -eq 0 ] || status=1; done
for t in backup convert; do case "${VERIFIED[$t]}" in identical*) ;; *) status=1 ;; esac; done
exit "$status"
