#!/bin/sh
# Static analysis: clang-tidy (checks and the reason for each one left out
# in .clang-tidy) and cppcheck, over every file the build compiles, the
# generated protobuf code excluded. Exits non-zero on any finding.
# Usage: tests/lint.sh [build-dir]      (default: build-lint, set up with clang)
# Only the generated headers are built: the compile database is all the
# tools need. LINT_JOBS=N runs N clang-tidy processes (default: nproc).
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build-lint}
jobs=${LINT_JOBS:-$(nproc)}

# Debian 12's tools: clang-tidy 14, cppcheck 2.10, clang for the database.
missing=""
command -v clang-tidy >/dev/null || missing="$missing clang-tidy"
command -v cppcheck >/dev/null || missing="$missing cppcheck"
command -v clang++ >/dev/null || missing="$missing clang"
if [ -n "$missing" ]; then
  echo "installing:$missing"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi
[ -f "$dir/build.ninja" ] || CXX=clang++ meson setup "$dir" >/dev/null
# Refreshes compile_commands.json too, should a meson.build have changed.
ninja -C "$dir" proto/inetd.pb.h >/dev/null
mkdir -p "$dir/lint"
lint=$(cd "$dir/lint" && pwd)

# The file lists, and a copy of the database cppcheck 2.10 can read: it
# drops a shell-quoted define ('-DX="..."') from a "command" string, and
# the files that test such a define then stop at their #error. Each file
# once (the fuzz replayer is compiled three times).
python3 - "$dir" "$lint" <<'EOF'
import json, os, shlex, sys
d, out = sys.argv[1], sys.argv[2]
db = json.load(open(os.path.join(d, 'compile_commands.json')))
seen, strict, tests, cpp = set(), [], [], []
for e in db:
    path = os.path.normpath(os.path.join(e['directory'], e['file']))
    if path in seen or '.pb.' in path:
        continue
    seen.add(path)
    (tests if '/tests/' in path else strict).append(path)
    args = [a.replace('"', '\\"') if a.startswith('-D') else a
            for a in shlex.split(e['command'])]
    cpp.append({'directory': e['directory'], 'file': e['file'], 'arguments': args})
open(os.path.join(out, 'strict.txt'), 'w').write('\n'.join(strict) + '\n')
open(os.path.join(out, 'tests.txt'), 'w').write('\n'.join(tests) + '\n')
json.dump(cpp, open(os.path.join(out, 'compile_commands.json'), 'w'), indent=1)
EOF

# tidy CHECKS LIST: one clang-tidy per file, $jobs at a time; a file's
# output is shown only if it has a finding. CHECKS (may be empty) is added
# to .clang-tidy's list.
tidy() {
  xargs -P "$jobs" -I{} sh -c '
    if ! out=$(clang-tidy -p "$1" --quiet ${2:+"--checks=$2"} "$3" 2>&1); then
      printf "%s\n" "$out" | grep -v "warnings\? generated\.$"
      exit 1
    fi' sh "$dir" "$1" {} <"$2"
}

status=0
start=$(date +%s)
echo "clang-tidy: proto/ privileged/ spawner/ listener/ (.clang-tidy)"
tidy "" "$lint/strict.txt" || status=1
echo "clang-tidy: $(($(date +%s) - start)) s"
# Tests get the checks that find bugs (bugprone, cert, performance,
# portability), not the style checks, and not the static analyzer: it
# takes minutes per file in GoogleTest's macros; the sanitizer build runs
# the tests instead. Also left out: easily-swappable-parameters (as in
# .clang-tidy); forward-declaration-namespace (GoogleTest declares its own
# MessageLite); cert-err58-cpp (a test's static tables may allocate);
# cert-msc32-c/msc51-cpp (tests seed with constants to reproduce).
echo "clang-tidy: tests/ (bug checks only)"
checks="-*,bugprone-*,cert-*,performance-*,portability-*,-bugprone-easily-swappable-parameters"
checks="$checks,-bugprone-forward-declaration-namespace,-cert-err58-cpp,-cert-msc32-c,-cert-msc51-cpp"
tidy "$checks" "$lint/tests.txt" || status=1
echo "clang-tidy: $(($(date +%s) - start)) s in all"

# cppcheck does not read system headers; the generated inetd.pb.h needs
# protobuf's port macros (and those the compiler's predefined ones) or it
# stops at its version #error, taking every file that includes it along.
{
  clang++ -std=c++20 -dM -E -x c++ /dev/null
  echo "#include \"$(pkg-config --variable=includedir protobuf-lite)/google/protobuf/port_def.inc\""
} >"$lint/cppcheck-prelude.h"
echo "cppcheck"
# Suppressed everywhere: the "non reentrant function" portability notes.
# Only the resolver starts threads, and they call getnameinfo, getaddrinfo
# and innetgr (behind a mutex), none of these; glibc deprecates readdir_r.
cppcheck --project="$lint/compile_commands.json" \
  --include="$lint/cppcheck-prelude.h" \
  --library=posix --library=googletest \
  --enable=warning,performance,portability --inline-suppr --error-exitcode=1 \
  -i"$dir" -j "$jobs" --quiet \
  --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
  --suppress=getpwnamCalled --suppress=getpwuidCalled --suppress=getpwentCalled \
  --suppress=getgrnamCalled --suppress=getservbynameCalled --suppress=getservbyportCalled \
  --suppress=readdirCalled || status=1

if [ "$status" -eq 0 ]; then
  echo "lint: clean ($(($(date +%s) - start)) s)"
else
  echo "lint: findings above ($(($(date +%s) - start)) s)"
fi
exit "$status"
