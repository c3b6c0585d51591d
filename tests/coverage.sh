#!/bin/sh
# Line and branch coverage of the root side's own code, privileged/ and
# spawner/, from the whole test suite (unit, ipc, integration, fuzz corpus
# replay). The integration tests need root. Usage:
#   tests/coverage.sh [build-dir]      (default: build-cov)
# The build is gcc at -O0 (line and branch counts follow the source), kept
# apart from the other build directories. Exits with the suite's status.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build-cov}
tests/deps.sh
if ! command -v gcovr >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcovr
fi
[ -f "$dir/build.ninja" ] ||
  CXX=g++ meson setup "$dir" -Db_coverage=true --buildtype=debug >/dev/null
ninja -C "$dir"
# Counts from an earlier run would add up with this one's.
find "$dir" -name '*.gcda' -delete
# XXX: what a spawned child runs between fork and execve (spawner/exec.cc's
# Child, listener_proc.cc's BecomeListener) counts as never run: gcov writes
# its counters at exit, and execve discards them.
status=0
meson test -C "$dir" --print-errorlogs --num-processes 2 || status=$?

# Branches: only those the source shows. gcc also counts the exception
# edges of every call (the root side is built with -fno-exceptions, but
# inlined library code is not) and branches on lines with no code.
set -- --root . --object-directory "$dir" --filter 'privileged/' --filter 'spawner/' \
  --exclude-throw-branches --exclude-unreachable-branches
echo
echo "== lines, privileged/ and spawner/"
gcovr "$@" --txt
echo "== branches, privileged/ and spawner/"
gcovr "$@" --txt --branches
echo "== summary, privileged/ and spawner/"
gcovr "$@" --print-summary --txt /dev/null
exit "$status"
