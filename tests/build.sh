#!/bin/sh
# Configures (once) and builds into the directory given (default: build).
# Extra arguments go to `meson setup`, e.g. -Db_sanitize=address,undefined.
set -eu
dir=${1:-build}
[ $# -gt 0 ] && shift
cd "$(dirname "$0")/.."
if [ -f "$dir/build.ninja" ]; then
  [ $# -gt 0 ] && meson configure "$dir" "$@"
else
  meson setup "$dir" "$@"
fi
ninja -C "$dir"
