#!/bin/sh
# Lints the manual pages: mandoc must have nothing to say about them at
# warning level or above, and every option letter in the monitor's getopt
# string (privileged/cli.cc) must have its ".It Fl X" entry in inetd.8.
# Usage: man/lint.sh [source-root]. Exit 77 (skipped) without mandoc.
set -eu
root=${1:-$(dirname "$0")/..}
man="$root/man"
cli="$root/privileged/cli.cc"

if ! command -v mandoc >/dev/null 2>&1; then
  echo "mandoc not installed: skipped"
  exit 77
fi

status=0
for page in "$man/inetd.8" "$man/inetd.conf.5"; do
  # mandoc's complaints about a stale mandoc.db concern the host, not us.
  out=$(mandoc -Tlint -Wwarning "$page" 2>&1 | grep -v 'outdated mandoc.db' || true)
  if [ -n "$out" ]; then
    printf '%s\n' "$out"
    status=1
  fi
done

# The option string is the third argument of the getopt() call.
opts=$(sed -n 's/.*getopt([^"]*"\([^"]*\)".*/\1/p' "$cli" | head -n 1)
if [ -z "$opts" ]; then
  echo "$cli: no getopt() option string found" >&2
  exit 1
fi
letters=$(printf '%s' "$opts" | tr -d ':')
for x in $(printf '%s' "$letters" | sed 's/./& /g'); do
  # Documented means an entry in the options list: ".It Fl X [Ar arg]".
  if ! grep -Eq "^\.It Fl $x( |\$)" "$man/inetd.8"; then
    echo "inetd.8: option -$x of $cli has no \".It Fl $x\" entry"
    status=1
  fi
done

[ "$status" -eq 0 ] && echo "man pages: clean; options documented: $letters"
exit "$status"
