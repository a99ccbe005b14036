#!/usr/bin/env bash
# Side by side: `zcow convert` against `qemu-img convert -c` (zstd) with the target in writeback
# and in O_DIRECT (-t none) cache mode, on the same generated ext4 disk. Prints medians, ratios,
# output sizes, and how much of the page cache each run left behind. See bench/README.md.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
REPO=$(cd "$BENCH_DIR/.." && pwd)

SIZE=3G
RUNS=5
THREADS=$(nproc)
WORK="$BENCH_DIR/target/convert-vs-qemu"
SOURCE=""
KEEP=0
ZCOW=${ZCOW:-"$REPO/zcow"}

usage() {
  cat <<EOF
usage: $0 [--size 3G] [--runs 5] [--threads N] [--work DIR] [--source RAW] [--keep]

  --size SIZE    size of the generated ext4 disk (IEC suffixes: 512M, 3G; default $SIZE)
  --runs N       rounds; each round runs every tool once, in rotating order (default $RUNS)
  --threads N    zcow --threads (default: nproc = $THREADS)
  --work DIR     where the cached disk, outputs and logs go (default bench/target/convert-vs-qemu)
  --source RAW   use this raw disk instead of generating one
  --keep         keep the output images (default: deleted at the end)

  ZCOW=CMD       zcow command to run (default: ./zcow at the repository root); may hold arguments
EOF
}

die() { echo "convert-vs-qemu: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=${2:?--size needs a value}; shift 2 ;;
    --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
    --threads) THREADS=${2:?--threads needs a value}; shift 2 ;;
    --work) WORK=${2:?--work needs a value}; shift 2 ;;
    --source) SOURCE=${2:?--source needs a value}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, was '$RUNS'"
[[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, was '$THREADS'"
SIZE_BYTES=$(size_bytes "$SIZE") || die "--size: cannot read '$SIZE'"
[ "$SIZE_BYTES" -ge $((64 << 20)) ] || die "--size must be at least 64M, was $SIZE"

for t in qemu-img fincore numfmt awk; do
  find_tool "$t" >/dev/null || die "$t not found (apt-get install qemu-utils util-linux coreutils gawk)"
done
zcow_command convert-vs-qemu || exit 2

mkdir -p "$WORK/logs"
WORK=$(cd "$WORK" && pwd)


# ---------------------------------------------------------------------------------------------
# The source disk: a real ext4 file system filled with system files (make_disk in lib.sh).

ext4_disk "$SOURCE" "$WORK/disk-ext4-$SIZE_BYTES.raw" "$SIZE_BYTES"
SOURCE=$DISK
SOURCE_BYTES=$(blockdev --getsize64 "$SOURCE" 2>/dev/null || stat -c %s "$SOURCE")

avail=$(df -B1 --output=avail "$WORK" | tail -n 1 | tr -d ' ')
if [ "$avail" -lt $((SOURCE_BYTES * 3 / 2)) ]; then
  echo "warning: only $(mib "$avail") MiB free in $WORK; outputs may not fit" >&2
fi

# ---------------------------------------------------------------------------------------------
# Runs.

TOOLS=(zcow qemu-writeback qemu-none)
target_of() { echo "$WORK/out-$1.qcow2"; }

command_of() {
  local tool=$1 target
  target=$(target_of "$tool")
  case "$tool" in
    zcow) CMD=("${ZCOW_CMD[@]}" convert "$SOURCE" "$target" --threads "$THREADS" --level 3
               --cluster-size 64k --target-cache direct --progress none --force) ;;
    qemu-writeback) CMD=(qemu-img convert -c -f raw -O qcow2 -o compression_type=zstd -m 8 -W
                         -t writeback "$SOURCE" "$target") ;;
    qemu-none) CMD=(qemu-img convert -c -f raw -O qcow2 -o compression_type=zstd -m 8 -W
                    -t none "$SOURCE" "$target") ;;
  esac
}

DROP=1


declare -A TIMES SIZES RESIDENT CACHED SRC_RESIDENT FAILED VERIFIED
for t in "${TOOLS[@]}"; do TIMES[$t]=""; SIZES[$t]=""; RESIDENT[$t]=""; CACHED[$t]=""; SRC_RESIDENT[$t]=""; FAILED[$t]=0; done

verify_zcow() {
  local target
  target=$(target_of zcow)
  echo "verify: qemu-img compare $SOURCE $target"
  if qemu-img compare -f raw -F qcow2 "$SOURCE" "$target" > "$WORK/logs/verify.log" 2>&1 \
     && qemu-img check -f qcow2 "$target" >> "$WORK/logs/verify.log" 2>&1; then
    VERIFIED[zcow]="identical, check clean"
  else
    VERIFIED[zcow]="FAILED (see $WORK/logs/verify.log)"
    sed 's/^/  /' "$WORK/logs/verify.log" >&2
  fi
  echo "verify: zcow output ${VERIFIED[zcow]}"
}

run_one() {
  local tool=$1 round=$2 target log
  target=$(target_of "$tool")
  log="$WORK/logs/$tool-$round.log"
  command_of "$tool"
  rm -f -- "$target"
  drop_caches
  local before t0 t1 status=0
  before=$(cached_bytes)
  t0=$(date +%s%N)
  "${CMD[@]}" > "$log" 2>&1 || status=$?
  t1=$(date +%s%N)
  if [ "$status" -ne 0 ] || [ ! -f "$target" ]; then
    FAILED[$tool]=$(( ${FAILED[$tool]} + 1 ))
    echo "run $round $tool: FAILED (exit $status), last lines of $log:" >&2
    tail -n 5 "$log" | sed 's/^/  /' >&2
    return 0
  fi
  local secs growth res src_res size
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  growth=$(( $(cached_bytes) - before ))
  res=$(resident_bytes "$target")
  src_res=$(resident_bytes "$SOURCE")
  size=$(stat -c %s "$target")
  SIZES[$tool]+="$size "
  TIMES[$tool]+="$secs "
  RESIDENT[$tool]+="$res "
  CACHED[$tool]+="$growth "
  SRC_RESIDENT[$tool]+="$src_res "
  printf 'run %d %-15s %8.2f s  %8.1f MB/s  out %9s MiB  target resident %8s MiB  source resident %8s MiB  Cached %9s MiB\n' \
    "$round" "$tool" "$secs" "$(awk -v s="$SOURCE_BYTES" -v t="$secs" 'BEGIN { print s / t / 1e6 }')" \
    "$(mib "$size")" "$(mib "$res")" "$(mib "$src_res")" "$(mib "$growth")"
  if [ "$tool" = zcow ] && [ -z "${VERIFIED[zcow]:-}" ]; then
    verify_zcow
  fi
}


echo "source: $SOURCE ($(mib "$SOURCE_BYTES") MiB, $(mib "$(( $(stat -c %b "$SOURCE") * $(stat -c %B "$SOURCE") ))") MiB allocated)"
echo "zcow: ${ZCOW_CMD[*]}  threads: $THREADS  runs: $RUNS  work: $WORK"
echo

for round in $(seq 1 "$RUNS"); do
  # Rotate the order each round so no tool always runs first (warm CPU, cold disk, etc.).
  for i in 0 1 2; do
    run_one "${TOOLS[$(( (i + round - 1) % 3 ))]}" "$round"
  done
done

# ---------------------------------------------------------------------------------------------
# Summary.

echo
ref_time=$(median "${TIMES[qemu-writeback]}")
ref_size=$(median "${SIZES[qemu-writeback]:-}")
printf '%-15s %10s %9s %10s %12s %10s %15s %15s %15s\n' tool "median s" "vs wb" "MB/s" "out MiB" \
  "size vs wb" "target res MiB" "source res MiB" "Cached +MiB"
for t in "${TOOLS[@]}"; do
  if [ -z "${TIMES[$t]}" ]; then
    printf '%-15s all %d runs FAILED\n' "$t" "${FAILED[$t]}"
    continue
  fi
  m=$(median "${TIMES[$t]}")
  printf '%-15s %10.2f %9s %10.1f %12s %10s %15s %15s %15s\n' "$t" "$m" \
    "$(awk -v a="$m" -v b="$ref_time" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')" \
    "$(awk -v s="$SOURCE_BYTES" -v t="$m" 'BEGIN { print s / t / 1e6 }')" \
    "$(mib "$(median "${SIZES[$t]}")")" \
    "$(awk -v a="$(median "${SIZES[$t]}")" -v b="$ref_size" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')" \
    "$(mib "$(median "${RESIDENT[$t]}")")" "$(mib "$(median "${SRC_RESIDENT[$t]}")")" \
    "$(mib "$(median "${CACHED[$t]}")")"
  [ "${FAILED[$t]}" -eq 0 ] || echo "  ($t failed ${FAILED[$t]} of $RUNS runs; logs in $WORK/logs)"
done
echo "(median of $RUNS runs; 'vs wb' is time / qemu-img -t writeback time; resident and Cached are"
echo " measured right after each run, page cache dropped before each run: $([ "$DROP" -eq 1 ] && echo yes || echo NO))"
echo "zcow output: ${VERIFIED[zcow]:-not verified (no successful run)}"

if [ "$KEEP" -eq 0 ]; then
  for t in "${TOOLS[@]}"; do rm -f -- "$(target_of "$t")"; done
fi

status=0
for t in "${TOOLS[@]}"; do [ "${FAILED[$t]}" -eq 0 ] || status=1; done
case "${VERIFIED[zcow]:-}" in identical*) ;; *) status=1 ;; esac
exit "$status"
