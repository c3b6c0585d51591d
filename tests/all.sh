#!/bin/sh
# README's second command: install, build, and run every test.
# Usage: tests/all.sh [build-dir [meson setup options]]
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build}
tests/deps.sh
tests/build.sh "$@"
meson test -C "$dir" --print-errorlogs --num-processes 2
