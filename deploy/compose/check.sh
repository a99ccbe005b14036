#!/usr/bin/env bash
# Brings this compose cluster up on the images of deploy/images/build.sh, backs up a generated disk
# through it (the backup service's container as coordinator, the three workers, the two writers),
# checks the image with qemu-img (check, and compare with the disk), and takes everything down
# again, volumes included, whatever happened. Exits non-zero when any step fails.
# Usage: deploy/compose/check.sh
# Environment:
#   COMPOSE      the compose command (default: docker-compose, else `docker compose`, else podman-compose)
#   ZCOW_ENGINE  docker or podman, for `cp` (default: podman with podman-compose, else docker)
#   KEEP=1       leave the cluster and the work directory for a look (take it down with the
#                printed command)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { echo "compose check: $*"; }

if [ -z "${COMPOSE:-}" ]; then
  if command -v docker-compose >/dev/null; then
    COMPOSE=docker-compose
  elif docker compose version >/dev/null 2>&1; then
    COMPOSE="docker compose"
  elif command -v podman-compose >/dev/null; then
    COMPOSE=podman-compose
  else
    echo "compose check: no compose command (apt-get install docker-compose, or set COMPOSE)" >&2
    exit 1
  fi
fi
case $COMPOSE in
  podman-compose*) engine=${ZCOW_ENGINE:-podman} ;;
  *) engine=${ZCOW_ENGINE:-docker} ;;
esac
command -v qemu-img >/dev/null || { echo "compose check: qemu-img is missing (apt-get install qemu-utils)" >&2; exit 1; }

# The compose file in a directory of its own: its ./sources and ./auth.key are this run's, and the
# project name keeps its containers and volumes apart from a cluster someone runs from deploy/compose.
work=$(mktemp -d)
chmod 0755 "$work"
cp "$here/compose.yaml" "$work/"
project=zcow-check-$$
# shellcheck disable=SC2206 # COMPOSE may be two words
compose=($COMPOSE -p "$project" -f "$work/compose.yaml")

finish() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    say "FAILED (exit $status); the last lines of each service:"
    (cd "$work" && "${compose[@]}" logs --no-color --tail=40) 2>&1 || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    say "kept: cd $work && $COMPOSE -p $project down -v"
  else
    (cd "$work" && "${compose[@]}" down -v --remove-orphans) > "$work/down.log" 2>&1 \
      || { cat "$work/down.log"; status=1; }
    rm -rf "$work"
  fi
  exit "$status"
}
trap finish EXIT

start=$SECONDS
# 48 MiB: random data (stored raw), a hole (no cluster at all), text (compressed).
mkdir -p "$work/sources"
disk=$work/sources/disk.img
head -c $((16 << 20)) /dev/urandom > "$disk"
truncate -s $((32 << 20)) "$disk"
yes 'zcow compose check: a line of text that compresses well' | head -c $((16 << 20)) >> "$disk" || true
chmod 0755 "$work/sources"
chmod 0644 "$disk"
head -c 32 /dev/urandom > "$work/auth.key"
# The roles run as the image's user 10001, and a compose secret is the file itself, bind-mounted.
if [ "$(id -u)" -eq 0 ]; then
  chown 10001:10001 "$work/auth.key"
  chmod 0600 "$work/auth.key"
else
  chmod 0644 "$work/auth.key"
fi

cd "$work"
say "up ($COMPOSE, project $project)"
"${compose[@]}" up -d
say "cluster up in $((SECONDS - start)) s; backing up a 48 MiB disk"
backup=$SECONDS
"${compose[@]}" run --rm backup backup --kafka kafka:9092 --zookeeper zookeeper:2181 \
  --job-id check-1 --range-size 8m --window 8 --progress none --connect-timeout 60 \
  --auth-key-file /etc/zcow/auth/key /sources/disk.img check-1.qcow2
say "backup done in $((SECONDS - backup)) s"

"$engine" cp "$("${compose[@]}" ps -q writer-1)":/var/lib/zcow/images/check-1.qcow2 "$work/check-1.qcow2"
qemu-img check -f qcow2 "$work/check-1.qcow2"
qemu-img compare -f raw -F qcow2 "$disk" "$work/check-1.qcow2"
say "passed in $((SECONDS - start)) s (teardown follows)"
