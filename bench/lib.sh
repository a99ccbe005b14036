# Helpers shared by the bench scripts; sourced, never run. Each script sets DROP=1 before use.

# A tool on PATH or in the sbin directories a non-login root shell may lack.
find_tool() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || { [ -x "/sbin/$1" ] && echo "/sbin/$1"; }; }

# ZCOW_CMD (an array) from $ZCOW, the zcow command and any arguments; says why and fails (exit
# status 1) when it is empty or not a command. NAME prefixes the message.
zcow_command() {
  read -r -a ZCOW_CMD <<< "$ZCOW"
  [ ${#ZCOW_CMD[@]} -gt 0 ] || { echo "$1: ZCOW is empty" >&2; return 1; }
  command -v "${ZCOW_CMD[0]}" >/dev/null 2>&1 \
    || { echo "$1: zcow command not found: ${ZCOW_CMD[0]} (build it, or set ZCOW)" >&2; return 1; }
}

# A size with an IEC suffix (512M, 3g, 1GiB) in bytes; fails on anything else.
size_bytes() { local s=${1%[iI][bB]}; numfmt --from=iec "${s^^}" 2>/dev/null; }

# Bytes as MiB with one decimal; "?" for anything that is not a number.
mib() { awk -v b="$1" 'BEGIN { if (b ~ /^-?[0-9.]+$/) printf "%.1f", b / 1048576; else print "?" }'; }

# Median of a space-separated list of numbers ("?" entries ignored; "nan" when none is left).
median() {
  # shellcheck disable=SC2086
  printf '%s\n' $1 | { grep -v '^?*$' || true; } | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.3f\n", m }'
}

# a / b as "N.NNx", or "-" when either is not a positive number.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2fx", a / b; else print "-" }'; }

# Machine-wide page cache (Cached in /proc/meminfo) in bytes; runs no program, so it can be
# sampled often while a run goes on.
cached_bytes() {
  local k v _
  while read -r k v _; do
    if [ "$k" = Cached: ]; then echo $((v * 1024)); return; fi
  done < /proc/meminfo
}

# Bytes of FILE resident in the page cache ("?" when fincore cannot tell).
resident_bytes() { fincore --bytes --noheadings --output RES -- "$1" 2>/dev/null | tr -d ' ' || echo "?"; }

# Sync and drop the page cache before a run, once saying so if this process may not.
drop_caches() {
  sync
  if [ "${DROP:-1}" -eq 1 ] && ! { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null; then
    DROP=0
    echo "note: cannot write /proc/sys/vm/drop_caches (not root?): page cache NOT dropped between" \
         "runs; times and Cached growth are less comparable" >&2
  fi
}

# make_disk OUT SIZE: a real ext4 file system of SIZE bytes in OUT, filled to about three quarters
# with this machine's system files (hard-linked into a staging directory beside OUT when possible);
# the files chosen are listed in DIR/logs/staged.txt, DIR being OUT's directory. Needs die().
make_disk() {
  local out=$1 size=$2
  local dir
  dir=$(dirname "$out")
  mkdir -p "$dir/logs"
  local mkfs
  mkfs=$(find_tool mkfs.ext4) || die "mkfs.ext4 not found (apt-get install e2fsprogs)"
  local java_home=""
  if command -v java >/dev/null 2>&1; then
    java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  fi
  # Best first; a directory that does not fit whole is entered and its children tried.
  local roots=("$java_home" /usr/share /usr/lib /usr/bin /usr/sbin /usr/include /usr/libexec)
  local budget=$((size * 3 / 4))
  declare -gA STAGED
  local attempt
  for attempt in 1 2 3; do
    local stage="$dir/.stage"
    rm -rf -- "$stage"
    mkdir -p "$stage"
    LEFT=$budget
    STAGED=()
    STAGED_LOG="$dir/logs/staged.txt"
    : > "$STAGED_LOG"
    local r
    for r in "${roots[@]}"; do
      if [ -n "$r" ] && [ -d "$r" ]; then
        stage_path "$r" "$stage" 0
      fi
    done
    echo "disk: staged $(mib $((budget - LEFT))) MiB of system files; mkfs.ext4 -d (attempt $attempt)"
    rm -f -- "$out.tmp"
    if "$mkfs" -q -F -d "$stage" "$out.tmp" "$((size / 1024))" > "$dir/logs/mkfs.log" 2>&1; then
      rm -rf -- "$stage"
      truncate -s "$size" "$out.tmp"
      mv -f -- "$out.tmp" "$out"
      return 0
    fi
    echo "disk: mkfs.ext4 failed: $(tail -n 1 "$dir/logs/mkfs.log"); retrying with less content"
    rm -rf -- "$stage"
    budget=$((budget / 2))
  done
  die "mkfs.ext4 kept failing, see $dir/logs/mkfs.log"
}

# stage_path SRC STAGE DEPTH: mirror SRC under STAGE (hard links when possible), within LEFT bytes.
# A directory already present in STAGE is an ancestor of something staged: descend into it.
stage_path() {
  local src=$1 stage=$2 depth=$3
  [ "$LEFT" -gt 4096 ] || return 0
  [ -z "${STAGED[$src]:-}" ] || return 0
  local dst="$stage$src"
  if [ -L "$dst" ] || { [ -e "$dst" ] && [ ! -d "$dst" ]; }; then
    return 0
  fi
  if [ ! -d "$dst" ]; then
    # du may complain about an unreadable corner; its total is still good enough for a budget.
    local bytes
    bytes=$(du -sb -- "$src" 2>/dev/null | cut -f1 || true)
    [[ "$bytes" =~ ^[0-9]+$ ]] || return 0
    if [ "$bytes" -le "$LEFT" ]; then
      mkdir -p -- "$(dirname "$dst")"
      if cp -al -- "$src" "$dst" 2>/dev/null \
         || { rm -rf -- "$dst"; cp -a -- "$src" "$dst" 2>/dev/null; }; then
        LEFT=$((LEFT - bytes))
        STAGED[$src]=1
        echo "$bytes $src" >> "$STAGED_LOG"
      else
        rm -rf -- "$dst"
      fi
      return 0
    fi
  fi
  if [ -d "$src" ] && [ ! -L "$src" ] && [ "$depth" -lt 5 ]; then
    local child
    while IFS= read -r -d '' child; do
      stage_path "$child" "$stage" $((depth + 1))
    done < <(find "$src" -mindepth 1 -maxdepth 1 -print0 | sort -z)
  fi
  return 0
}

# ext4_disk SOURCE DEFAULT SIZE_BYTES: sets DISK to SOURCE (a raw file or block device given by
# the user) or, when SOURCE is empty, to DEFAULT, made with make_disk unless it exists.
ext4_disk() {
  if [ -n "$1" ]; then
    [ -f "$1" ] || [ -b "$1" ] || die "--source $1 is not a file or block device"
    DISK=$(readlink -f "$1")
  else
    DISK=$2
    if [ -f "$DISK" ]; then
      echo "disk: reusing $DISK"
    else
      echo "disk: making a $(mib "$3") MiB ext4 disk of system files in $DISK"
      make_disk "$DISK" "$3"
    fi
  fi
}
