#!/usr/bin/env bash
# zcow's deployed roles as local processes, with the command lines of deploy/k8s and
# deploy/compose: a dev cluster (Kafka broker + ZooKeeper in one JVM, standing in for Strimzi's
# Kafka and the ZooKeeper StatefulSet), 2 writers sharing one target directory (leader +
# standby), 3 workers, then one backup through them. Everything it started is stopped on exit.
#
#   deploy/local/run.sh SOURCE TARGET [BACKUP OPTION...]
#
# SOURCE: a disk image or block device; the workers may read only its directory (--source-allow).
# TARGET: the image's path relative to the writers' target root (WORK/images).
# BACKUP OPTION: more options of 'zcow backup' (e.g. --range-size 64m).
# Environment:
#   ZCOW          how to run zcow (default: the repository's ./zcow launcher, which builds the jar)
#   WORK          working directory: images/, logs/ (default: a new temporary directory, kept)
#   METRICS_BASE  writers serve metrics on METRICS_BASE+1 and +2, workers on +3..+5 (default 9404)
#   JOB_ID        the backup's --job-id (default: TARGET's name without extension)
#   AUTH_KEY_FILE the cluster's record key (default: WORK/auth.key, made with 32 random bytes)
# Exit code: the backup's (0 done, 1 failed, 2 bad input).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [ $# -lt 2 ]; then
  echo "usage: deploy/local/run.sh SOURCE TARGET [BACKUP OPTION...]" >&2
  exit 2
fi
source_path="$(realpath -- "$1")"
target="$2"
shift 2
if [ ! -r "$source_path" ]; then
  echo "run.sh: cannot read $source_path" >&2
  exit 2
fi

read -r -a zcow <<< "${ZCOW:-$root/zcow}"
work="${WORK:-$(mktemp -d -t zcow-local.XXXXXX)}"
metrics_base="${METRICS_BASE:-9404}"
job_id="${JOB_ID:-$(basename -- "${target%.*}")}"
source_dir="$(dirname -- "$source_path")"
images="$work/images"
logs="$work/logs"
mkdir -p "$images" "$logs"
# The cluster's record key (--auth-key-file), as the Secret zcow-auth is in Kubernetes.
auth_key="${AUTH_KEY_FILE:-$work/auth.key}"
if [ ! -s "$auth_key" ]; then
  (umask 077 && head -c 32 /dev/urandom > "$auth_key")
fi

pids=()
stop_all() {
  # The roles this script started, newest first (workers and writers before the cluster).
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
  done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    # A role gets 40 s to stop cleanly (a worker finishes or hands back its range), then is killed.
    local waited=0
    while kill -0 "${pids[i]}" 2>/dev/null && [ "$waited" -lt 400 ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -KILL "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME ARGS...: one role in the background, its output in logs/NAME.out and .err
start() {
  local name="$1"
  shift
  "${zcow[@]}" "$@" > "$logs/$name.out" 2> "$logs/$name.err" < /dev/null &
  pids+=("$!")
  echo "run.sh: $name (pid $!): zcow $*" >&2
}

start dev-cluster dev-cluster
# The cluster prints 'kafka: HOST:PORT' and 'zookeeper: HOST:PORT' once it is up.
kafka="" zookeeper=""
for _ in $(seq 1 1200); do
  kafka="$(sed -n 's/^kafka: //p' "$logs/dev-cluster.out")"
  zookeeper="$(sed -n 's/^zookeeper: //p' "$logs/dev-cluster.out")"
  [ -n "$kafka" ] && [ -n "$zookeeper" ] && break
  if ! kill -0 "${pids[0]}" 2>/dev/null; then
    echo "run.sh: the dev cluster stopped:" >&2
    cat "$logs/dev-cluster.err" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$kafka" ] || [ -z "$zookeeper" ]; then
  echo "run.sh: the dev cluster did not come up within 120 s (logs in $logs)" >&2
  exit 1
fi

# The writer group: the StatefulSet zcow-writer of deploy/k8s/base/writer.yaml.
for i in 1 2; do
  start "writer-$i" writer --kafka "$kafka" --zookeeper "$zookeeper" --target-root "$images" \
    --metrics-port "$((metrics_base + i))" --auth-key-file "$auth_key"
done
# The workers: the Deployment zcow-worker of deploy/k8s/base/worker.yaml.
for i in 1 2 3; do
  start "worker-$i" worker --kafka "$kafka" --source-allow "$source_dir" \
    --metrics-port "$((metrics_base + 2 + i))" --auth-key-file "$auth_key"
done

# The coordinator: the Job of deploy/k8s/backup-job.yaml. Its exit code is this script's.
echo "run.sh: zcow backup --kafka $kafka --zookeeper $zookeeper --job-id $job_id --window 32 --progress plain --auth-key-file $auth_key $* $source_path $target" >&2
status=0
"${zcow[@]}" backup --kafka "$kafka" --zookeeper "$zookeeper" --job-id "$job_id" --window 32 \
  --progress plain --auth-key-file "$auth_key" "$@" "$source_path" "$target" < /dev/null || status=$?
if [ "$status" -eq 0 ]; then
  echo "run.sh: image $images/$target (logs in $logs)" >&2
else
  echo "run.sh: backup exited $status (logs in $logs)" >&2
fi
exit "$status"
