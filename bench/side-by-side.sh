#!/usr/bin/env bash
# The side-by-side harness: zcow backup (embedded), zcow convert and qemu-img convert -c (zstd,
# -t writeback and -t none) on a real ext4 disk and on a disk of one repeated byte, in alternated
# rounds; the write-cache table of QEMU's "compressed write cache" thread reproduced with zcow;
# writer and worker heap for a 4 GiB and a 64 GiB sparse disk; the worker and writer-ingest
# benchmarks; a goals table; a PNG plot; docs/BENCHMARKS.md. See bench/README.md.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
REPO=$(cd "$BENCH_DIR/.." && pwd)

SIZE="" ONES_SIZE="" ROUNDS="" SAMPLE_SIZE="" QUICK=0 DOCS=1 HEAP=1 SUBS=1
WORK="$BENCH_DIR/target/side-by-side"
SOURCE=""
ZCOW=${ZCOW:-"$REPO/zcow"}

usage() {
  cat <<USAGE
usage: $0 [--size 3G] [--ones-size 1000M] [--rounds 3] [--quick] [--source RAW] [--work DIR]
          [--no-heap] [--no-sub] [--no-docs]

  --size SIZE       the generated ext4 disk (default 3G; cached in bench/target/convert-vs-qemu)
  --ones-size SIZE  the disk of one repeated byte, 0x01 (default 1000M, as in QEMU's thread)
  --rounds N        rounds; each runs every tool on both disks once, in rotating order (default 3)
  --quick           a check of the harness, not a measurement: 512M disks, 1 round,
                    256M worker sample (explicit options still win)
  --source RAW      use this raw disk instead of the generated ext4 disk
  --work DIR        outputs, logs, runs.tsv (default bench/target/side-by-side)
  --no-heap         skip the heap measurement (4 GiB and 64 GiB sparse disks, separate roles)
  --no-sub          skip worker-vs-zstd.sh, writer-ingest.sh and the dd source read
  --no-docs         do not rewrite docs/BENCHMARKS.md and docs/benchmarks.png

  ZCOW=CMD          zcow command to run (default: ./zcow at the repository root)
  Run as root so the page cache can be dropped before every run.
USAGE
}

die() { echo "side-by-side: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=${2:?--size needs a value}; shift 2 ;;
    --ones-size) ONES_SIZE=${2:?--ones-size needs a value}; shift 2 ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --source) SOURCE=${2:?--source needs a value}; shift 2 ;;
    --work) WORK=${2:?--work needs a value}; shift 2 ;;
    --no-heap) HEAP=0; shift ;;
    --no-sub) SUBS=0; shift ;;
    --no-docs) DOCS=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
if [ "$QUICK" -eq 1 ]; then
  SIZE=${SIZE:-512M} ONES_SIZE=${ONES_SIZE:-512M} ROUNDS=${ROUNDS:-1} SAMPLE_SIZE=256M
else
  SIZE=${SIZE:-3G} ONES_SIZE=${ONES_SIZE:-1000M} ROUNDS=${ROUNDS:-3} SAMPLE_SIZE=1G
fi
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, was '$ROUNDS'"
SIZE_BYTES=$(size_bytes "$SIZE") || die "--size: cannot read '$SIZE'"
ONES_BYTES=$(size_bytes "$ONES_SIZE") || die "--ones-size: cannot read '$ONES_SIZE'"
[ "$SIZE_BYTES" -ge $((64 << 20)) ] || die "--size must be at least 64M, was $SIZE"
[ "$ONES_BYTES" -ge $((64 << 20)) ] || die "--ones-size must be at least 64M, was $ONES_SIZE"
for t in qemu-img fincore numfmt awk zstd dd; do
  find_tool "$t" >/dev/null || die "$t not found (apt-get install qemu-utils util-linux coreutils gawk zstd)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time): it measures peak RSS"
zcow_command side-by-side || exit 2

mkdir -p "$WORK/logs"
WORK=$(cd "$WORK" && pwd)
[[ "$WORK" != *" "* ]] || die "--work must not contain spaces (it is passed in ZCOW_JAVA_OPTS)"
RUNS_TSV="$WORK/runs.tsv"
DROP=1

# ---------------------------------------------------------------------------------------------
# The disks.

ext4_disk "$SOURCE" "$BENCH_DIR/target/convert-vs-qemu/disk-ext4-$SIZE_BYTES.raw" "$SIZE_BYTES"
REAL=$DISK
ONES="$WORK/disk-ones-$ONES_BYTES.raw"
if [ ! -f "$ONES" ]; then
  echo "disk: making a $ONES_SIZE disk of the byte 0x01 in $ONES"
  head -c "$ONES_BYTES" /dev/zero | tr '\0' '\001' > "$ONES.tmp"
  mv -f -- "$ONES.tmp" "$ONES"
fi
bytes_of() { blockdev --getsize64 "$1" 2>/dev/null || stat -c %s "$1"; }
declare -A DISK_PATH=([real]="$REAL" [ones]="$ONES")
declare -A DISK_BYTES=([real]="$(bytes_of "$REAL")" [ones]="$(bytes_of "$ONES")")
DISKS=(real ones)

# ---------------------------------------------------------------------------------------------
# The matrix. A zcow tool is zcow-COMMAND[-wb][-nowc]: direct target and write cache on unless
# -wb (writeback target) or -nowc (write cache off). On the one-byte disk the four write-cache x
# target-cache combinations of zcow convert and zcow backup run (QEMU's table).

TOOLS_real=(zcow-backup zcow-convert qemu-writeback qemu-none)
TOOLS_ones=(zcow-backup zcow-convert qemu-writeback qemu-none zcow-convert-nowc zcow-convert-wb zcow-convert-wb-nowc
            zcow-backup-nowc zcow-backup-wb zcow-backup-wb-nowc)
QEMU_ARGS=(convert -c -f raw -O qcow2 -o compression_type=zstd -m 8 -W)
ZCOW_COMMON=(--level 3 --cluster-size 64k --progress none --force)

target_of() { echo "$WORK/out-$1-$2.qcow2"; }

command_of() {
  local disk=$1 tool=$2 src target
  src=${DISK_PATH[$disk]}
  target=$(target_of "$disk" "$tool")
  case "$tool" in
    zcow-backup*|zcow-convert*)
      local sub=${tool#zcow-} tc=direct wc=on
      [[ "$tool" != *-wb* ]] || tc=writeback
      [[ "$tool" != *-nowc ]] || wc=off
      CMD=("${ZCOW_CMD[@]}" "${sub%%-*}" "${ZCOW_COMMON[@]}" --target-cache "$tc" --write-cache "$wc" "$src" "$target") ;;
    qemu-writeback) CMD=(qemu-img "${QEMU_ARGS[@]}" -t writeback "$src" "$target") ;;
    qemu-none) CMD=(qemu-img "${QEMU_ARGS[@]}" -t none "$src" "$target") ;;
    *) die "no command for tool $tool" ;;
  esac
}

# After the page cache is dropped, read back the code a tool runs from (the JDK's modules, the
# zcow jar; qemu-img's binary), so that Cached growth counts the data a run leaves, not its code.
JAVA_HOME_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
warm_code() {
  case "$1" in
    zcow-*) cat "$JAVA_HOME_DIR/lib/modules" "$JAVA_HOME_DIR"/lib/*.so "$JAVA_HOME_DIR"/lib/server/* \
                "$REPO/cli/target/zcow.jar" > /dev/null 2>&1 || true
            "${ZCOW_CMD[@]}" --version > /dev/null 2>&1 || true ;;
    qemu-*) qemu-img --version > /dev/null 2>&1 || true ;;
  esac
}

declare -A VERIFIED
verify() {
  local disk=$1 tool=$2 target log
  target=$(target_of "$disk" "$tool")
  log="$WORK/logs/verify-$disk-$tool.log"
  if qemu-img compare -f raw -F qcow2 "${DISK_PATH[$disk]}" "$target" > "$log" 2>&1 \
     && qemu-img check -f qcow2 "$target" >> "$log" 2>&1; then
    VERIFIED[$disk/$tool]="identical, check clean"
  else
    VERIFIED[$disk/$tool]="FAILED (see $log)"
  fi
  echo "    verify $disk $tool: ${VERIFIED[$disk/$tool]}"
}

# One timed run: page cache dropped before; Cached sampled during (its peak counts the embedded
# broker's segments, deleted at the end) and read after; the target's residency after; peak RSS
# and elapsed time from /usr/bin/time. One line of runs.tsv.
run_one() {
  local disk=$1 tool=$2 round=$3 target log stats status=0 before peak c pid
  target=$(target_of "$disk" "$tool")
  log="$WORK/logs/$disk-$tool-$round.log"
  stats="$WORK/logs/$disk-$tool-$round.time"
  command_of "$disk" "$tool"
  rm -f -- "$target"
  drop_caches
  warm_code "$tool"
  before=$(cached_bytes)
  peak=$before
  /usr/bin/time -f '%e %M' -o "$stats" "${CMD[@]}" > "$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    c=$(cached_bytes)
    [ "$c" -le "$peak" ] || peak=$c
    sleep 0.2
  done
  wait "$pid" || status=$?
  local after secs rss res src_res size
  after=$(cached_bytes)
  read -r secs rss < <(tail -n 1 "$stats") || true
  if [ "$status" -ne 0 ] || [ ! -f "$target" ]; then
    [ "$status" -ne 0 ] || status=99
    echo "  round $round $disk $tool: FAILED (exit $status), last lines of $log:" >&2
    tail -n 5 "$log" | sed 's/^/    /' >&2
    printf '%s\t%s\t%d\t%d\t?\t?\t?\t?\t?\t?\t?\n' "$disk" "$tool" "$round" "$status" >> "$RUNS_TSV"
    return 0
  fi
  res=$(resident_bytes "$target")
  src_res=$(resident_bytes "${DISK_PATH[$disk]}")
  size=$(stat -c %s "$target")
  printf '%s\t%s\t%d\t0\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$disk" "$tool" "$round" "$secs" "$size" "$res" \
    $((after - before)) $((peak - before)) "$rss" "$src_res" >> "$RUNS_TSV"
  printf '  round %d %-5s %-21s %8.2f s  out %9s MiB  resident %7s MiB (source %s)  Cached +%7s MiB (peak +%s)  RSS %6s MiB\n' \
    "$round" "$disk" "$tool" "$secs" "$(mib "$size")" "$(mib "$res")" "$(mib "$src_res")" "$(mib $((after - before)))" \
    "$(mib $((peak - before)))" "$(mib $((rss * 1024)))"
  if [ "$tool" != qemu-writeback ] && [ "$tool" != qemu-none ] && [ -z "${VERIFIED[$disk/$tool]:-}" ]; then
    verify "$disk" "$tool"
  fi
}

# The ./zcow launcher rebuilds its jar when a source is newer: do that now, not in a timed run.
"${ZCOW_CMD[@]}" --version > "$WORK/logs/version.log" 2>&1 \
  || die "zcow --version failed: $(tail -n 3 "$WORK/logs/version.log")"

printf 'disk\ttool\tround\tstatus\tsecs\tout_bytes\ttarget_resident\tcached_growth\tcached_peak_growth\tpeak_rss_kib\tsource_resident\n' > "$RUNS_TSV"
echo "real disk: $REAL ($(mib "${DISK_BYTES[real]}") MiB)   one-byte disk: $ONES ($(mib "${DISK_BYTES[ones]}") MiB)"
echo "rounds: $ROUNDS   zcow: ${ZCOW_CMD[*]}   runs: $RUNS_TSV"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round"
  for d in 0 1; do
    disk=${DISKS[$(( (d + round - 1) % 2 ))]}
    declare -n tools="TOOLS_$disk"
    n=${#tools[@]}
    for i in $(seq 0 $((n - 1))); do
      run_one "$disk" "${tools[$(( (i + round - 1) % n ))]}" "$round"
    done
    unset -n tools
  done
done

for disk in "${DISKS[@]}"; do
  declare -n tools="TOOLS_$disk"
  for t in "${tools[@]}"; do rm -f -- "$(target_of "$disk" "$t")"; done
  unset -n tools
done

# med DISK TOOL COLUMN: the median of a runs.tsv column over the successful runs.
med() {
  median "$(awk -F'\t' -v d="$1" -v t="$2" -v c="$3" '$1 == d && $2 == t && $4 == 0 { printf "%s ", $c }' "$RUNS_TSV")"
}
failures() { awk -F'\t' -v d="$1" -v t="$2" '$1 == d && $2 == t && $4 != 0 { n++ } END { print n + 0 }' "$RUNS_TSV"; }
# The columns of runs.tsv.
C_SECS=5 C_OUT=6 C_RES=7 C_CACHED=8 C_PEAK=9 C_RSS=10 C_SRC=11
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v ~ /^-?[0-9.]+$/) printf f, v; else print "-" }'; }

# ---------------------------------------------------------------------------------------------
# Worker, writer ingest, source read.

declare -A STAGE
# sub_bench SCRIPT ARGS...: run another bench script, its output shown, kept in logs/SCRIPT.log
# and its "median: NAME N MB/s, ..." line kept in SUB_MEDIAN for sub_figure NAME.
sub_bench() {
  local log="$WORK/logs/${1%.sh}.log"
  echo
  echo "$*"
  "$BENCH_DIR/$1" "${@:2}" 2>&1 | sed $'s/\x1b\\[[0-9;]*m//g' | tee "$log" | sed 's/^/  /'
  SUB_MEDIAN=$(grep '^median:' "$log" || true)
}
sub_figure() { fmt "$(sed -nE "s/.* $1 ([0-9.]+) MB.*/\1/p" <<<"$SUB_MEDIAN")" %.0f; }
if [ "$SUBS" -eq 1 ]; then
  echo
  echo "source read: dd iflag=direct bs=4M of the real disk, $ROUNDS round(s)"
  reads=""
  for r in $(seq 1 "$ROUNDS"); do
    drop_caches
    v=$(dd if="$REAL" of=/dev/null bs=4M iflag=direct 2>&1 | awk '/copied/ { n = split($0, a, ","); split(a[n], b, " ");
          v = b[1]; if (b[2] == "GB/s") v *= 1000; if (b[2] == "kB/s") v /= 1000; print v }')
    echo "  round $r: $v MB/s"
    reads+="$v "
  done
  STAGE[read]=$(fmt "$(median "$reads")" %.0f)

  sample="$WORK/sample-$(size_bytes "$SAMPLE_SIZE").raw"
  [ -f "$sample" ] || head -c "$(size_bytes "$SAMPLE_SIZE")" "$REAL" > "$sample"
  sub_bench worker-vs-zstd.sh --source "$sample" --rounds "$ROUNDS"
  STAGE[zstd]=$(sub_figure zstd)
  STAGE[worker]=$(sub_figure worker)
  sub_bench writer-ingest.sh --source "$REAL" --rounds "$ROUNDS"
  STAGE[writer]=$(sub_figure writer)
  STAGE[dd]=$(sub_figure dd)
fi

# ---------------------------------------------------------------------------------------------
# Heap: the writer and the worker as separate processes (dev-cluster, writer, worker, backup
# --kafka), and zcow convert, on a 4 GiB and a 64 GiB sparse disk with 1 MiB of the real disk's
# data at the start of every 512 MiB (so every range and every L2 table has data). The young
# generation is fixed small (-Xmn16m) so collections happen often; the figure is the largest heap
# after a collection in the GC log (-Xlog:gc).

declare -A HEAP_MIB HEAP_GCS HEAP_RSS
GC_OPTS="-Xmn16m"
max_after_gc() { # the largest "after" of "NM->NM(NM)" in a GC log, in MiB; "?" without a collection
  awk 'match($0, /[0-9]+M->[0-9]+M\(/) { s = substr($0, RSTART, RLENGTH); split(s, a, /M->|M\(/);
       if (a[2] + 0 > m) m = a[2] + 0; n++ } END { if (n) print m; else print "?" }' "$1" 2>/dev/null || echo "?"
}
gc_count() { grep -c 'Pause' "$1" 2>/dev/null || true; }
rss_mib() { awk '{ v = $NF } END { if (v ~ /^[0-9]+$/) printf "%.0f", v / 1024; else print "?" }' "$1" 2>/dev/null || echo "?"; }

HEAP_PIDS=()
stop_heap_procs() {
  local p c
  for p in "${HEAP_PIDS[@]}"; do
    # The pid is /usr/bin/time's; the java process (the launcher execs it) is its child.
    for c in $(pgrep -P "$p" 2>/dev/null || true); do kill -TERM "$c" 2>/dev/null || true; done
  done
  for p in "${HEAP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  HEAP_PIDS=()
}

heap_disk() { # heap_disk LABEL BYTES: the sparse disk, made once
  local label=$1 bytes=$2 out="$WORK/disk-sparse-$1.raw" i n real_mib
  if [ ! -f "$out" ]; then
    rm -f -- "$out.tmp"
    truncate -s "$bytes" "$out.tmp"
    n=$((bytes >> 29))
    real_mib=$(( ${DISK_BYTES[real]} >> 20 ))
    for i in $(seq 0 $((n - 1))); do
      dd if="$REAL" of="$out.tmp" bs=1M count=1 skip=$(( (i * 7) % (real_mib * 3 / 4) )) seek=$((i * 512)) \
         conv=notrunc status=none
    done
    mv -f -- "$out.tmp" "$out"
  fi
  echo "$out"
}

heap_run() { # heap_run LABEL BYTES KAFKA ZOOKEEPER
  local label=$1 bytes=$2 kafka=$3 zk=$4 disk dir status=0
  disk=$(heap_disk "$label" "$bytes")
  dir="$WORK/heap/$label"
  rm -rf -- "$dir"
  mkdir -p "$dir/target"
  echo "  $label: $disk ($(mib "$(( $(stat -c %b "$disk") * $(stat -c %B "$disk") ))") MiB allocated)"
  ZCOW_JAVA_OPTS="$GC_OPTS -Xlog:gc:file=$dir/writer.gc" /usr/bin/time -f '%M' -o "$dir/writer.rss" \
    "${ZCOW_CMD[@]}" writer --kafka "$kafka" --zookeeper "$zk" --target-root "$dir/target" > "$dir/writer.log" 2>&1 &
  HEAP_PIDS+=($!)
  ZCOW_JAVA_OPTS="$GC_OPTS -Xlog:gc:file=$dir/worker.gc" /usr/bin/time -f '%M' -o "$dir/worker.rss" \
    "${ZCOW_CMD[@]}" worker --kafka "$kafka" > "$dir/worker.log" 2>&1 &
  HEAP_PIDS+=($!)
  ZCOW_JAVA_OPTS="$GC_OPTS -Xlog:gc:file=$dir/backup.gc" /usr/bin/time -f '%M' -o "$dir/backup.rss" \
    timeout 1200 "${ZCOW_CMD[@]}" backup --kafka "$kafka" --zookeeper "$zk" --progress none "$disk" "image.qcow2" \
    > "$dir/backup.log" 2>&1 || status=$?
  stop_heap_procs
  if [ "$status" -eq 0 ] && qemu-img compare -f raw -F qcow2 "$disk" "$dir/target/image.qcow2" > "$dir/verify.log" 2>&1 \
     && qemu-img check "$dir/target/image.qcow2" >> "$dir/verify.log" 2>&1; then
    VERIFIED[heap/$label]="identical, check clean"
  else
    VERIFIED[heap/$label]="FAILED (backup exit $status; see $dir)"
  fi
  rm -f -- "$dir/target/image.qcow2"
  ZCOW_JAVA_OPTS="$GC_OPTS -Xlog:gc:file=$dir/convert.gc" /usr/bin/time -f '%M' -o "$dir/convert.rss" \
    "${ZCOW_CMD[@]}" convert --progress none --force "$disk" "$dir/convert.qcow2" > "$dir/convert.log" 2>&1 \
    || VERIFIED[heap/$label]+="; convert FAILED (see $dir/convert.log)"
  rm -f -- "$dir/convert.qcow2"
  local role
  for role in writer worker backup convert; do
    HEAP_MIB[$role/$label]=$(max_after_gc "$dir/$role.gc")
    HEAP_GCS[$role/$label]=$(gc_count "$dir/$role.gc")
    HEAP_RSS[$role/$label]=$(rss_mib "$dir/$role.rss")
    echo "    $role: heap after GC at most ${HEAP_MIB[$role/$label]} MiB (${HEAP_GCS[$role/$label]} GCs), peak RSS ${HEAP_RSS[$role/$label]} MiB"
  done
  echo "    image: ${VERIFIED[heap/$label]}"
}

if [ "$HEAP" -eq 1 ]; then
  echo
  echo "heap: dev-cluster, then per disk a writer, a worker and backup --kafka (ZCOW_JAVA_OPTS=$GC_OPTS -Xlog:gc:...)"
  mkdir -p "$WORK/heap"
  "${ZCOW_CMD[@]}" dev-cluster > "$WORK/heap/dev-cluster.log" 2>&1 &
  DC_PID=$!
  for _ in $(seq 1 120); do
    grep -q '^zookeeper: ' "$WORK/heap/dev-cluster.log" 2>/dev/null && break
    kill -0 "$DC_PID" 2>/dev/null || break
    sleep 0.5
  done
  KAFKA=$(awk '/^kafka: / { print $2 }' "$WORK/heap/dev-cluster.log")
  ZK=$(awk '/^zookeeper: / { print $2 }' "$WORK/heap/dev-cluster.log")
  if [ -n "$KAFKA" ] && [ -n "$ZK" ]; then
    heap_run 4g $((4 << 30)) "$KAFKA" "$ZK"
    heap_run 64g $((64 << 30)) "$KAFKA" "$ZK"
  else
    echo "  dev-cluster did not start: $(tail -n 3 "$WORK/heap/dev-cluster.log")" >&2
  fi
  kill -TERM "$DC_PID" 2>/dev/null || true
  wait "$DC_PID" 2>/dev/null || true
fi

# ---------------------------------------------------------------------------------------------
# Tables (Markdown, printed and put into docs/BENCHMARKS.md).

REPORT="$WORK/report.md"
PLOT_TSV="$WORK/plot.tsv"
: > "$PLOT_TSV"
label_of() { # the name of a tool in the tables and the plot
  case "$1" in
    qemu-writeback) echo "qemu-img -t writeback" ;;
    qemu-none) echo "qemu-img -t none" ;;
    zcow-*)
      local sub=${1#zcow-} how=direct
      sub=${sub%%-*}
      [[ "$1" != *-wb* ]] || how=writeback
      [ "$sub" != backup ] || how="embedded, $how"
      [[ "$1" != *-nowc ]] || how+=", write cache off"
      echo "zcow $sub ($how)" ;;
  esac
}
declare -A DISK_LABEL=([real]="ext4 disk of system files" [ones]="disk of one repeated byte")

matrix_table() {
  local disk=$1 ref_t ref_s t m s bytes=${DISK_BYTES[$disk]}
  ref_t=$(med "$disk" qemu-writeback $C_SECS)
  ref_s=$(med "$disk" qemu-writeback $C_OUT)
  echo "**${DISK_LABEL[$disk]}** (${DISK_PATH[$disk]##*/}, $(mib "$bytes") MiB; medians of $ROUNDS round(s))"
  echo
  echo "| tool | time s | vs qemu-img writeback | MB/s | output MiB | output vs qemu-img | target resident MiB | source resident MiB | Cached growth MiB | Cached peak growth MiB | peak RSS MiB | failed runs |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  declare -n tools="TOOLS_$disk"
  for t in "${tools[@]}"; do
    m=$(med "$disk" "$t" $C_SECS)
    s=$(med "$disk" "$t" $C_OUT)
    echo "| $(label_of "$t") | $(fmt "$m" %.2f) | $(ratio "$m" "$ref_t") | $(awk -v b="$bytes" -v t="$m" 'BEGIN { if (t > 0) printf "%.0f", b / t / 1e6; else print "-" }') | $(mib "$s") | $(ratio "$s" "$ref_s") | $(mib "$(med "$disk" "$t" $C_RES)") | $(mib "$(med "$disk" "$t" $C_SRC)") | $(mib "$(med "$disk" "$t" $C_CACHED)") | $(mib "$(med "$disk" "$t" $C_PEAK)") | $(awk -v k="$(med "$disk" "$t" $C_RSS)" 'BEGIN { if (k ~ /^[0-9.]+$/) printf "%.0f", k / 1024; else print "-" }') | $(failures "$disk" "$t") |"
    printf 'time\t%s\t%s\t%s\t%s\n' "${DISK_LABEL[$disk]}" "$(label_of "$t")" "$m" "$ref_t" >> "$PLOT_TSV"
  done
  unset -n tools
  echo
}

wc_cell() { # time and target residency of one tool on the one-byte disk
  local m r
  m=$(med ones "$1" $C_SECS)
  r=$(med ones "$1" $C_RES)
  echo "$(fmt "$m" %.2f) s, $(mib "$r") MiB resident"
}

goal_row() { # goal_row TEXT MEASURED OK(1/0/-)
  local met=no
  case "$3" in 1) met=yes ;; -) met="not measured" ;; esac
  echo "| $1 | $2 | $met |"
}
le() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^-?[0-9.]+$/ || b !~ /^-?[0-9.]+$/) print "-"; else print (a <= b) ? 1 : 0 }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.3f", a / b; else print "?" }'; }

{
  echo "### Side by side"
  echo
  for disk in "${DISKS[@]}"; do matrix_table "$disk"; done
  echo "Time is elapsed seconds of the whole command (backup includes starting and stopping its"
  echo "embedded broker and ZooKeeper). The page cache is dropped before every run ($([ "$DROP" -eq 1 ] && echo done || echo "NOT possible here: numbers less comparable"))."
  echo "Target and source resident: \`fincore\` of the output and of the disk right after the run."
  echo "Cached growth: \`Cached\` of /proc/meminfo after the run minus before it (machine-wide: other"
  echo "activity counts too); peak growth: the largest during the run (sampled every 0.2 s; the embedded"
  echo "broker's segments count there, they are deleted with it). Peak RSS: \`/usr/bin/time -f %M\`."
  echo
  echo "### The write-cache table of QEMU's thread, with zcow"
  echo
  echo "QEMU's \"qcow2: compressed write cache\" series timed a compressed backup of a 1000M disk filled with"
  echo "ones (ssd to hdd): 300 s direct and 5.7 s cached without the cache, 4.4 s and 5.4 s with it."
  echo "Here: the disk of one repeated byte (${DISK_BYTES[ones]} bytes), medians of $ROUNDS round(s); qemu-img has no write cache."
  echo
  echo "| target cache | qemu-img convert -c | zcow convert, write cache off | zcow convert, write cache on | zcow backup, write cache off | zcow backup, write cache on |"
  echo "|---|---|---|---|---|---|"
  echo "| direct (O_DIRECT; qemu-img -t none) | $(wc_cell qemu-none) | $(wc_cell zcow-convert-nowc) | $(wc_cell zcow-convert) | $(wc_cell zcow-backup-nowc) | $(wc_cell zcow-backup) |"
  echo "| writeback (page cache) | $(wc_cell qemu-writeback) | $(wc_cell zcow-convert-wb-nowc) | $(wc_cell zcow-convert-wb) | $(wc_cell zcow-backup-wb-nowc) | $(wc_cell zcow-backup-wb) |"
  echo
  if [ "$SUBS" -eq 1 ]; then
    echo "### Stages"
    echo
    echo "| stage | MB/s | measured by |"
    echo "|---|---:|---|"
    echo "| source read | ${STAGE[read]:-?} | \`dd if=DISK of=/dev/null bs=4M iflag=direct\`, page cache dropped |"
    echo "| compression, zcow worker, 1 thread | ${STAGE[worker]:-?} | \`bench/worker-vs-zstd.sh\` (RangeCompressor on $SAMPLE_SIZE of the disk, in the page cache) |"
    echo "| compression, zstd CLI, 1 thread | ${STAGE[zstd]:-?} | \`zstd -b3 -B65536 -T1\` on the same data |"
    echo "| writer ingest (image bytes) | ${STAGE[writer]:-?} | \`bench/writer-ingest.sh\`: one writer draining a preloaded broker into a direct image |"
    echo "| target write | ${STAGE[dd]:-?} | \`dd if=/dev/zero bs=1M oflag=direct\`, as many bytes, same file system |"
    echo
    printf 'stage\tsource read (dd iflag=direct)\t%s\n' "${STAGE[read]:-?}" >> "$PLOT_TSV"
    printf 'stage\tcompression: zcow worker, 1 thread\t%s\n' "${STAGE[worker]:-?}" >> "$PLOT_TSV"
    printf 'stage\tcompression: zstd CLI, 1 thread\t%s\n' "${STAGE[zstd]:-?}" >> "$PLOT_TSV"
    printf 'stage\twriter ingest (messaging + writer)\t%s\n' "${STAGE[writer]:-?}" >> "$PLOT_TSV"
    printf 'stage\ttarget write (dd oflag=direct)\t%s\n' "${STAGE[dd]:-?}" >> "$PLOT_TSV"
  fi
  for t in zcow-convert zcow-backup qemu-writeback; do
    m=$(med real "$t" $C_SECS)
    printf 'stage\tend to end: %s\t%s\n' "$(label_of "$t")" \
      "$(awk -v b="${DISK_BYTES[real]}" -v t="$m" 'BEGIN { if (t > 0) printf "%.1f", b / t / 1e6; else print "?" }')" >> "$PLOT_TSV"
  done
  if [ "$HEAP" -eq 1 ]; then
    echo "### Heap"
    echo
    echo "Largest heap after a collection (\`-Xlog:gc\`, young generation fixed at 16 MiB so collections are frequent)"
    echo "and peak RSS, each role in its own process (\`zcow dev-cluster\`, \`zcow writer\`, \`zcow worker\`,"
    echo "\`zcow backup --kafka\`), then \`zcow convert\`; sparse disks with 1 MiB of data every 512 MiB."
    echo
    echo "| process | heap MiB, 4 GiB disk | heap MiB, 64 GiB disk | GCs 4 GiB / 64 GiB | peak RSS MiB 4 GiB / 64 GiB |"
    echo "|---|---:|---:|---:|---:|"
    for role in writer worker backup convert; do
      echo "| zcow $role | ${HEAP_MIB[$role/4g]:-?} | ${HEAP_MIB[$role/64g]:-?} | ${HEAP_GCS[$role/4g]:-?} / ${HEAP_GCS[$role/64g]:-?} | ${HEAP_RSS[$role/4g]:-?} / ${HEAP_RSS[$role/64g]:-?} |"
    done
    echo
    echo "Images: 4 GiB ${VERIFIED[heap/4g]:-not made}; 64 GiB ${VERIFIED[heap/64g]:-not made}."
    echo
  fi

  echo "### Goals"
  echo
  echo "| goal | measured | met |"
  echo "|---|---|---|"
  q=$(med real qemu-writeback $C_SECS); qs=$(med real qemu-writeback $C_OUT)
  b=$(div "$(med real zcow-backup $C_SECS)" "$q"); bs=$(div "$(med real zcow-backup $C_OUT)" "$qs")
  c=$(div "$(med real zcow-convert $C_SECS)" "$q")
  goal_row "zcow backup (embedded) time <= 0.75 x qemu-img writeback, ext4 disk, zstd 3" "${b}x" "$(le "$b" 0.75)"
  goal_row "zcow backup output <= 1.03 x qemu-img's" "${bs}x" "$(le "$bs" 1.03)"
  goal_row "zcow convert time <= 0.6 x qemu-img writeback" "${c}x" "$(le "$c" 0.6)"
  for t in zcow-backup zcow-convert; do
    r=$(med real "$t" $C_RES); g=$(med real "$t" $C_CACHED)
    goal_row "after $(label_of "$t"): target resident <= 1 MiB" "$(mib "$r") MiB" "$(le "$r" $((1 << 20)))"
    goal_row "after $(label_of "$t"): system-wide Cached growth <= 64 MiB" "$(mib "$g") MiB" "$(le "$g" $((64 << 20)))"
  done
  w=$(div "${STAGE[writer]:-?}" "${STAGE[dd]:-?}")
  goal_row "writer ingest >= 0.7 x dd O_DIRECT write" "${w}x" "$(le 0.7 "$w")"
  z=$(div "${STAGE[worker]:-?}" "${STAGE[zstd]:-?}")
  goal_row "worker compression >= 0.9 x zstd CLI per core" "${z}x" "$(le 0.9 "$z")"
  for role in writer worker; do
    h4=${HEAP_MIB[$role/4g]:-?} h64=${HEAP_MIB[$role/64g]:-?}
    goal_row "$role heap the same for 4 GiB and 64 GiB (64 GiB <= 4 GiB x 1.1 + 16 MiB)" "$h4 / $h64 MiB" \
      "$(le "$h64" "$(awk -v h="$h4" 'BEGIN { if (h ~ /^[0-9.]+$/) print h * 1.1 + 16; else print "?" }')")"
  done
  echo
  echo "Every zcow output verified (\`qemu-img compare\` with the source, \`qemu-img check\`):"
  for k in "${!VERIFIED[@]}"; do echo "- $k: ${VERIFIED[$k]}"; done | sort
  echo
} > "$REPORT"

echo
cat "$REPORT"

# ---------------------------------------------------------------------------------------------
# Plot and docs.

PNG="$WORK/benchmarks.png"
(cd "$REPO" && mvn -q -B -Dstyle.color=never -DskipTests -pl cli,bench -am package) > "$WORK/logs/build.log" 2>&1 \
  || die "building the bench module failed: $(tail -n 5 "$WORK/logs/build.log")"
java -Djava.awt.headless=true -cp "$REPO/bench/target/classes" io.zcow.bench.BenchPlot "$PLOT_TSV" "$PNG" \
  "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $ROUNDS round(s)$([ "$QUICK" -eq 1 ] && echo ', --quick')"
echo "plot: $PNG"

if [ "$DOCS" -eq 1 ]; then
  DOC="$REPO/docs/BENCHMARKS.md"
  cp -f -- "$PNG" "$REPO/docs/benchmarks.png"
  fs=$(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')
  {
    echo "<!-- side-by-side:begin (written by bench/side-by-side.sh; edit outside these markers) -->"
    echo "## Results"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC')$([ "$QUICK" -eq 1 ] && echo ' with `--quick` (small disks, one round: a check of the harness, not a measurement)')."
    echo
    echo "![time against qemu-img and throughput per stage](benchmarks.png)"
    echo
    echo "**Machine**: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores,"
    echo "$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM; $(uname -srm); outputs on $fs;"
    echo "$(qemu-img --version | head -n 1); $(zstd --version | tr -d '*' | xargs); $(java -version 2>&1 | head -n 1)."
    echo
    echo "**Command**: \`sudo bench/side-by-side.sh --size $SIZE --ones-size $ONES_SIZE --rounds $ROUNDS$([ "$QUICK" -eq 1 ] && echo ' --quick')\`"
    echo "(every run in \`bench/target/side-by-side/runs.tsv\`). The commands timed:"
    echo
    echo '```'
    for t in "${TOOLS_ones[@]}"; do
      command_of ones "$t"
      echo "${t}: $(printf '%s ' "${CMD[@]}" | sed "s|${DISK_PATH[ones]}|DISK|; s|$WORK/out-ones-$t.qcow2|OUT|; s|$REPO/|./|g; s| $||")"
    done
    echo '```'
    echo
    cat "$REPORT"
    echo "<!-- side-by-side:end -->"
  } > "$WORK/docs-section.md"
  if [ -f "$DOC" ] && grep -q '<!-- side-by-side:begin' "$DOC" && grep -q '<!-- side-by-side:end -->' "$DOC"; then
    awk -v sec="$WORK/docs-section.md" '
      /<!-- side-by-side:begin/ { while ((getline l < sec) > 0) print l; skip = 1; next }
      /<!-- side-by-side:end -->/ { skip = 0; next }
      !skip { print }' "$DOC" > "$DOC.tmp"
  else
    { echo "# Benchmarks"; echo; echo "How to run them: \`bench/README.md\`."; echo; cat "$WORK/docs-section.md"; } > "$DOC.tmp"
  fi
  mv -f -- "$DOC.tmp" "$DOC"
  echo "docs: $DOC and docs/benchmarks.png updated"
fi

status=0
awk -F'\t' 'NR > 1 && $4 != 0 { bad = 1 } END { exit bad }' "$RUNS_TSV" || status=1
for k in "${!VERIFIED[@]}"; do case "${VERIFIED[$k]}" in identical*) ;; *) status=1 ;; esac; done
exit "$status"
