#!/bin/sh
# Counts the code lines linked into the root binary: privileged/, spawner/
# and proto/ sources (generated protobuf code excluded), without blank lines
# and comments. Fails when the total passes the budget in tests/rootloc.budget.
set -eu
cd "$(dirname "$0")/.."
count() {
  find "$@" -type f \( -name '*.cc' -o -name '*.h' \) ! -name '*.pb.*' -print0 | sort -z |
    xargs -0 cat | sed -e 's#//.*##' | grep -vcE '^\s*$|^\s*/?\*'
}
budget=$(cat tests/rootloc.budget)
total=0
for d in privileged spawner proto; do
  n=$(count "$d")
  printf '%-12s %5d\n' "$d/" "$n"
  total=$((total + n))
done
printf '%-12s %5d (budget %d)\n' total "$total" "$budget"
[ "$total" -le "$budget" ] || { echo "root code over budget" >&2; exit 1; }
