#!/bin/sh
# README's first command: install, build, and run inetd in the foreground
# on etc/inetd.conf.example (loopback, unprivileged ports). Ctrl-C stops it.
set -eu
cd "$(dirname "$0")/.."
tests/deps.sh
tests/build.sh build
exec build/inetd -d etc/inetd.conf.example
