#!/bin/sh
# Runs every libFuzzer target for a bounded time (default 60 s each) from a
# copy of its seed corpus; fails on any crash, leak or sanitizer report.
# Usage: tests/fuzz/run.sh BUILD_DIR [seconds]   (BUILD_DIR configured with
#   CXX=clang++ meson setup BUILD_DIR -Dfuzz=true -Db_sanitize=address,undefined)
set -eu
build=$(cd "$1" && pwd)
secs=${2:-60}
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for fuzzer in "$build"/tests/fuzz/fuzz_*; do
  [ -f "$fuzzer" ] && [ -x "$fuzzer" ] || continue
  name=${fuzzer##*/fuzz_}
  mkdir -p "$work/$name"
  cp -r "$src/corpus/$name/." "$work/$name/" 2>/dev/null || true
  echo "== fuzz_$name: ${secs}s"
  if ! (cd "$work" && "$fuzzer" -max_total_time="$secs" -max_len=8192 -print_final_stats=1 \
        "$work/$name" 2>"$work/$name.log"); then
    tail -40 "$work/$name.log"
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|cov: " "$work/$name.log" | tail -3
done
exit $status
