# Helpers shared by the bench scripts; sourced, never run. Each script sets DROP=1 before use.

# A tool on PATH or in the sbin directories a non-login root shell may lack.
find_tool() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || { [ -x "/sbin/$1" ] && echo "/sbin/$1"; }; }

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

# Sync and drop the page cache before a run, once saying so if this process may not.
drop_caches() {
  sync
  if [ "${DROP:-1}" -eq 1 ] && ! { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null; then
    DROP=0
    echo "note: cannot write /proc/sys/vm/drop_caches (not root?): page cache NOT dropped between" \
         "runs; times and Cached growth are less comparable" >&2
  fi
}
