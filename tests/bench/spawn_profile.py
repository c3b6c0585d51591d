#!/usr/bin/env python3
"""Where a nowait spawn's time goes in our inetd (issue 10, workload A).

For each concurrency (default 1 and 32) it starts ours on one `hello`
service, warms up, and runs `loadgen spawn`, reading before and after, per
process (monitor, listener) from /proc:

- CPU per connection (schedstat: ns on a CPU) and run-queue wait per
  connection (schedstat: runnable, waiting for a CPU);
- voluntary and involuntary context switches per connection (status). The
  monitor sleeps voluntarily in two places only: epoll_wait, and clone()
  while a child runs up to its exec (CLONE_VFORK). One voluntary switch per
  connection means it never waited for work: it is the bottleneck.

With --strace (strace installed) a second run traces the monitor's clone()
calls with -T: the wall time of each is the monitor's wait for a child's
work up to exec (credentials, fds, then execve until the kernel releases the
parent's memory). strace slows the monitor's other calls, so that run's rate
is not a figure; the clone times are.

usage: sudo python3 tests/bench/spawn_profile.py [--inetd build-bench/inetd]
           [--conc 1,32] [-n 20000] [--strace]
Not part of the test suite. Cleans up every process it starts.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (run.py: tools, our daemon class, /proc helpers)


def proc_figures(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        run_ns, wait_ns = (int(x) for x in f.read().split()[:2])
    vol = invol = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                vol = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                invol = int(line.split()[1])
    return run_ns, wait_ns, vol, invol


def clone_times(monitor_pid, tools, port, conc, n):
    """Wall time of the monitor's clone() calls under strace -T, in us."""
    out = os.path.join(tools["work"], f"clone-{conc}.txt")
    tracer = subprocess.Popen(["strace", "-T", "-e", "trace=clone,clone3", "-o", out,
                               "-p", str(monitor_pid)], stderr=subprocess.DEVNULL)
    bench.STARTED.append(tracer)
    time.sleep(0.5)
    try:
        bench.loadgen(tools, ["spawn", "-p", port, "-c", conc, "-n", n, "-t", 60], timeout=90)
    finally:
        tracer.send_signal(2)
        tracer.wait(timeout=10)
    with open(out) as f:
        times = [float(m.group(1)) * 1e6 for m in re.finditer(r"clone3?\(.*<([0-9.]+)>", f.read())]
    return sorted(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inetd", default=os.path.join(bench.HERE, "..", "..", "build-bench", "inetd"))
    ap.add_argument("--user", default="_inetd", help="the listener's user (-u)")
    ap.add_argument("--conc", default="1,32")
    ap.add_argument("-n", type=int, default=20000, help="connections measured at each concurrency")
    ap.add_argument("--strace", action="store_true", help="also time clone() with strace -T")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("spawn_profile: run as root (the monitor binds, then drops to --user)")
    if args.strace and shutil.which("strace") is None:
        sys.exit("spawn_profile: --strace needs strace (apt-get install strace)")
    bench.become_subreaper()
    work = tempfile.mkdtemp(prefix="inetd-spawnprof-", dir="/var/tmp")
    try:
        tools = bench.build_tools(work)
        tools.update({"inetd": os.path.abspath(args.inetd), "user": args.user, "work": work})
        port = bench.Ports(24500).take()
        d = bench.Ours("inetd (ours)", work, tools, [("spawn", port)])
        d.start()
        d.ready()
        monitor, listener = d.pids[0], d.pids[1]
        print(f"inetd: {tools['inetd']}; {os.cpu_count()} CPUs; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("| conc | conn/s | process | CPU us/conn | run-queue wait us/conn "
              "| voluntary switches/conn | involuntary/conn |")
        print("|---|---|---|---|---|---|---|")
        for conc in (int(c) for c in args.conc.split(",")):
            bench.loadgen(tools, ["spawn", "-p", port, "-c", conc, "-n", 2000, "-t", 30], 60)
            before = {p: proc_figures(p) for p in (monitor, listener)}
            res = bench.loadgen(tools, ["spawn", "-p", port, "-c", conc, "-n", args.n,
                                        "-t", 120], timeout=180)
            after = {p: proc_figures(p) for p in (monitor, listener)}
            n = res["total"]
            for name, p in (("monitor", monitor), ("listener", listener)):
                b, a = before[p], after[p]
                print(f"| {conc} | {res['rate']:,.0f} | {name} | {(a[0] - b[0]) / 1e3 / n:.1f} "
                      f"| {(a[1] - b[1]) / 1e3 / n:.1f} | {(a[2] - b[2]) / n:.2f} "
                      f"| {(a[3] - b[3]) / n:.2f} |")
        if args.strace:
            print()
            print("monitor's clone() wall time (strace -T; the wait for each child up to exec):")
            for conc in (int(c) for c in args.conc.split(",")):
                t = clone_times(monitor, tools, port, conc, min(args.n, 5000))
                if t:
                    print(f"- conc {conc}: {len(t)} calls, median {statistics.median(t):.0f} us, "
                          f"p10 {t[len(t) // 10]:.0f} us, p90 {t[len(t) * 9 // 10]:.0f} us")
        d.stop()
    finally:
        bench.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
