#!/usr/bin/env python3
"""Where the idle memory goes: ours against openbsd-inetd (issue 10,
workload D).

Each daemon is started alone with 10 `hello` services, as in run.py's
workload D, and left idle; then /proc/PID/smaps of each of its processes
gives the proportional set size (PSS) of every mapping, summed by object
(a library or program by file name, else [heap], [stack], [anon]). A page
shared with other processes counts a share in each, so a library every
process maps costs little, one only these daemons map costs in full.

usage: sudo python3 tests/bench/memory_profile.py [--inetd build-bench/inetd]
           [--top 14]
Not part of the test suite. Cleans up every process it starts.
"""

import argparse
import collections
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (run.py: tools, daemon classes, /proc helpers)

MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


def pss_by_object(pid):
    """{object: [PSS KiB, private dirty KiB]} of one process."""
    out = collections.defaultdict(lambda: [0, 0])
    obj = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if MAPPING.match(line):
                fields = line.split()
                obj = os.path.basename(fields[5]) if len(fields) > 5 else "[anon]"
                if len(fields) > 5 and fields[5].startswith("["):
                    obj = fields[5]
            elif line.startswith("Pss:"):
                out[obj][0] += int(line.split()[1])
            elif line.startswith("Private_Dirty:"):
                out[obj][1] += int(line.split()[1])
    return out


def idle_profile(cls, name, work, tools, ports):
    d = cls(name, work, tools, [("spawn", ports.take()) for _ in range(10)])
    try:
        d.start()
        d.ready()
        time.sleep(0.5)
        return [(pid, bench.exe_of(pid), pss_by_object(pid)) for pid in d.daemon_pids()]
    finally:
        d.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inetd", default=os.path.join(bench.HERE, "..", "..", "build-bench", "inetd"))
    ap.add_argument("--user", default="_inetd", help="the listener's user (-u)")
    ap.add_argument("--top", type=int, default=14, help="objects listed per daemon")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get openbsd-inetd")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("memory_profile: run as root (the monitor binds, then drops to --user)")
    bench.become_subreaper()
    work = tempfile.mkdtemp(prefix="inetd-memprof-", dir="/var/tmp")
    try:
        tools = bench.build_tools(work)
        tools.update(bench.install_peers(args.no_install))
        tools.update({"inetd": os.path.abspath(args.inetd), "user": args.user, "work": work})
        ports = bench.Ports(24700)
        daemons = [(bench.Ours, "inetd (ours)")]
        if "openbsd-inetd" in tools:
            daemons.append((bench.OpenBSDInetd, "openbsd-inetd"))
        print(f"inetd: {tools['inetd']}; each daemon alone, idle, 10 services; PSS in KiB "
              "(private dirty in parentheses)")
        for cls, name in daemons:
            procs = idle_profile(cls, name, work, tools, ports)
            cols = [os.path.basename(exe or str(pid)) for pid, exe, _ in procs]
            objects = collections.Counter()
            for _, _, per in procs:
                for obj, (pss, _) in per.items():
                    objects[obj] += pss
            print()
            print(f"### {name}: {sum(objects.values()):,} KiB in {len(procs)} "
                  f"process{'es' if len(procs) > 1 else ''}")
            print()
            print("| object | " + " | ".join(cols) + (" | together |" if len(cols) > 1 else " |"))
            print("|---" * (len(cols) + 1 + (len(cols) > 1)) + "|")
            shown = objects.most_common(args.top)
            for obj, total in shown:
                cells = [f"{per[obj][0]:,} ({per[obj][1]:,})" if obj in per else "-"
                         for _, _, per in procs]
                print(f"| {obj} | " + " | ".join(cells) + (f" | {total:,} |" if len(cols) > 1 else " |"))
            rest = sum(objects.values()) - sum(t for _, t in shown)
            sums = [sum(v[0] for v in per.values()) for _, _, per in procs]
            blanks = " | " * (len(cols) - 1) if len(cols) > 1 else ""
            print(f"| (the rest) | {blanks}{rest:,} |" if len(cols) == 1
                  else f"| (the rest) |{blanks} | {rest:,} |")
            print("| **all** | " + " | ".join(f"**{s:,}**" for s in sums)
                  + (f" | **{sum(sums):,}** |" if len(cols) > 1 else " |"))
            dirty = sum(v[1] for _, _, per in procs for v in per.values())
            print()
            print(f"Private dirty (written pages: heap, stacks, relocated library data): "
                  f"{dirty:,} KiB. The rest is clean pages of programs and libraries, "
                  "which the kernel can drop and read back; a share of each, in full "
                  "where only this daemon maps them.")
    finally:
        bench.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
