#!/usr/bin/env bash
# An incremental backup against the full one: a qcow2 guest made from an ext4 disk of system
# files, with a persistent dirty bitmap; `zcow backup` (embedded) of it over qemu-nbd -B, then
# CHANGE percent of its clusters overwritten with random data by qemu-io (the export stopped),
# then `zcow backup --incremental` of the changes, by the bitmap and by cluster digests (no bitmap:
# every cluster read and digested, only those whose SHA-256 differs from full.qcow2.digests sent).
# Prints time, clusters read, payload accepted (what crossed Kafka, duplicates aside) and image
# size of each, checks both chains with qemu-img compare, and the digest rate of one core
# (DigestRate.java). See bench/README.md.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
REPO=$(cd "$BENCH_DIR/.." && pwd)

SIZE=16G
CHANGE=1
WORK="$BENCH_DIR/target/incremental"
ZCOW=${ZCOW:-"$REPO/zcow"}
CS=65536

usage() {
  cat <<EOF
usage: $0 [--size 16G] [--change 1] [--work DIR]

  --size SIZE     size of the guest disk (default $SIZE)
  --change PCT    percent of the guest's clusters overwritten before the incremental (default $CHANGE)
  --work DIR      disks, images, sockets and logs (default bench/target/incremental)

  ZCOW=CMD        zcow command (default: ./zcow at the repository root)
EOF
}

die() { echo "incremental: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=${2:?}; shift 2 ;;
    --change) CHANGE=${2:?}; shift 2 ;;
    --work) WORK=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[[ "$CHANGE" =~ ^([0-9]|[1-9][0-9]|100)$ ]] || die "--change must be 0 to 100, was '$CHANGE'"
SIZE_BYTES=$(size_bytes "$SIZE") || die "--size: cannot read '$SIZE'"
for t in qemu-img qemu-nbd qemu-io numfmt awk; do
  find_tool "$t" >/dev/null || die "$t not found (apt-get install qemu-utils coreutils gawk)"
done
zcow_command incremental || exit 2

mkdir -p "$WORK/logs"
WORK=$(cd "$WORK" && pwd)
ext4_disk "" "$WORK/disk-ext4-$SIZE_BYTES.raw" "$SIZE_BYTES"

GUEST="$WORK/guest.qcow2"
rm -f -- "$GUEST" "$WORK"/full.qcow2* "$WORK"/inc.qcow2* "$WORK"/inc-digest.qcow2*
qemu-img convert -q -f raw -O qcow2 -o cluster_size=$CS "$DISK" "$GUEST"
qemu-img bitmap --add --enable -g $CS -f qcow2 "$GUEST" b0

PID=""
stop_server() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; PID=""; fi; }
trap stop_server EXIT
serve() {
  local sock="$WORK/guest.sock" pidfile="$WORK/guest.pid"
  rm -f -- "$sock" "$pidfile"
  qemu-nbd -r -t -e 16 -f qcow2 -B b0 -x disk -k "$sock" --pid-file "$pidfile" --fork "$GUEST"
  PID=$(cat "$pidfile")
  URI="nbd+unix:///disk?socket=$sock"
}

# run NAME ARGS...: one backup; sets SECS and LOG.
run() {
  local name=$1; shift
  LOG="$WORK/logs/$name.log"
  local start end
  start=$(date +%s.%N)
  "${ZCOW_CMD[@]}" backup --progress plain "$@" > "$LOG" 2>&1 || { cat "$LOG" >&2; die "$name failed"; }
  end=$(date +%s.%N)
  SECS=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
}

# The size in bytes of "… <number> <unit> of payload accepted" in LOG.
payload() { sed -n 's/.* \([0-9.]*\) \([KMGT]\?i\?B\) of payload accepted.*/\1\2/p' "$LOG" | tail -n 1 \
  | sed "s/B$//" | numfmt --from=iec-i 2>/dev/null || echo "?"; }

serve
run full "$URI" "$WORK/full.qcow2"
FULL_SECS=$SECS FULL_PAYLOAD=$(payload)
stop_server

CLUSTERS=$(( (SIZE_BYTES + CS - 1) / CS ))
N=$(( CLUSTERS * CHANGE / 100 ))
head -c $CS /dev/urandom > "$WORK/random.bin"
echo "changing $N of $CLUSTERS clusters"
awk -v n="$N" -v c="$CLUSTERS" -v cs=$CS -v f="$WORK/random.bin" 'BEGIN {
  srand(7); while (k < n) { i = int(rand() * c); if (!(i in seen)) { seen[i]; k++; printf "write -s %s %.0f %d\n", f, i * cs, cs } } }' \
  | qemu-io -f qcow2 "$GUEST" > "$WORK/logs/qemu-io.log"

serve
run incremental --incremental "$WORK/full.qcow2" --bitmap b0 "$URI" "$WORK/inc.qcow2"
INC_SECS=$SECS INC_PAYLOAD=$(payload)
CHANGED=$(sed -n 's/.*: changed \(.*\), on .*/\1/p' "$LOG" | tail -n 1)
run digest --incremental "$WORK/full.qcow2" "$URI" "$WORK/inc-digest.qcow2"
DIG_SECS=$SECS DIG_PAYLOAD=$(payload)
DIG_READ=$(sed -n 's/.*: read \([0-9]*\) clusters: \([0-9]*\) changed.*/\1 \2/p' "$LOG" | tail -n 1)
stop_server
qemu-img compare -q -f qcow2 -F qcow2 "$GUEST" "$WORK/inc-digest.qcow2" || die "the digest chain does not read as the guest"
qemu-img check -q -f qcow2 "$WORK/inc-digest.qcow2" || die "the digest overlay does not check clean"

qemu-img compare -q -f qcow2 -F qcow2 "$GUEST" "$WORK/inc.qcow2" || die "the chain does not read as the guest"
qemu-img check -q -f qcow2 "$WORK/inc.qcow2" || die "the overlay does not check clean"

printf '%-12s %8s %16s %14s %12s\n' run "time s" "clusters read" "payload MiB" "image MiB"
printf '%-12s %8s %16s %14s %12s\n' full "$FULL_SECS" "all data" "$(mib "$FULL_PAYLOAD")" "$(mib "$(stat -c %s "$WORK/full.qcow2")")"
printf '%-12s %8s %16s %14s %12s\n' bitmap "$INC_SECS" "$N changed" "$(mib "$INC_PAYLOAD")" "$(mib "$(stat -c %s "$WORK/inc.qcow2")")"
printf '%-12s %8s %16s %14s %12s\n' digest "$DIG_SECS" "${DIG_READ%% *}" "$(mib "$DIG_PAYLOAD")" "$(mib "$(stat -c %s "$WORK/inc-digest.qcow2")")"
echo "bitmap: changed $CHANGED; digest: ${DIG_READ##* } clusters changed of ${DIG_READ%% *} read;" \
  "both chains compare identical to the guest and check clean"
JAR="$REPO/cli/target/zcow.jar"
if [ -f "$JAR" ] && [ -d "$REPO/bench/target/classes" ]; then
  java -cp "$JAR:$REPO/bench/target/classes" io.zcow.bench.DigestRate "$DISK" $CS 3 \
    | awk '/sha256-mbps/{printf "digest cost: SHA-256 %s MB/s per core", $2} /unchanged-pass/{printf ", a digest pass over the disk (read from cache, zero check, SHA-256) %s MB/s per core", $2} END{print ""}'
fi
