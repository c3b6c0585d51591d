#!/usr/bin/env python3
"""Where an internal echo round trip's time goes: ours against openbsd-inetd
(issue 10, workload B).

Latency on this virtual machine swings by more than the gap between the two,
so this counts work instead. Both daemons and the client run on one CPU
(--cpu), so that CPU does all of a round trip and nothing else; `perf stat`
counts its instructions (user and kernel) and cycles over -n round trips of
64 bytes on one held connection, rounds interleaved. The client is the same
program for both, so the difference per round trip is the server's.

A second, shorter run per daemon counts the server's system calls per round
trip (`strace -c`, following openbsd-inetd's per-connection child). strace
slows that run; its counts are the figure, not its time.

With --symbols N, a third run per daemon samples that CPU's instructions
(`perf record`, one sample per million, below the kernel's sample-rate cap)
and lists the N functions whose instructions per round trip differ most:
the shape of the difference, not exact totals.

usage: sudo python3 tests/bench/echo_profile.py [--inetd build-bench/inetd]
           [-n 100000] [--rounds 3] [--cpu 0] [--no-strace] [--symbols 20]
Needs perf (linux-perf) and strace. Not part of the test suite. Cleans up
every process it starts.
"""

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (run.py: tools, daemon classes, /proc helpers)

EVENTS = ("instructions:u", "instructions:k", "cycles")


def pin(pids, cpu):
    for p in pids:
        for q in [p] + bench.descendants(p):
            try:
                os.sched_setaffinity(q, {cpu})
            except OSError:
                pass


def counted_run(tools, port, cpu, n, out):
    """perf stat over CPU `cpu` while loadgen makes n round trips."""
    argv = ["perf", "stat", "-x,", "-o", out, "-a", "-C", str(cpu), "-e", ",".join(EVENTS),
            "--", tools["loadgen"], "echo", "-p", str(port), "-c", "1", "-n", str(n),
            "-t", "120", "-s", "64", "-w", "0"]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=180)
    if r.returncode != 0:
        raise RuntimeError(f"{argv}: exit {r.returncode}: {r.stderr.strip()}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    counts = {}
    with open(out) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) > 2 and fields[2] in EVENTS and fields[0].replace(".", "").isdigit():
                counts[fields[2]] = float(fields[0])
    if res["count"] != n or len(counts) != len(EVENTS):
        raise RuntimeError(f"port {port}: {res['count']} of {n} round trips, counters {counts}")
    return {"p50": res["p50_us"], "p99": res["p99_us"], "rate": res["rate"],
            **{e: counts[e] / n for e in EVENTS}}


def syscalls_per_round_trip(tools, pid, port, n, out):
    """strace -c -f on the server while loadgen makes n round trips:
    {syscall: calls per round trip}."""
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(pid)],
                              stderr=subprocess.DEVNULL)
    bench.STARTED.append(tracer)
    time.sleep(0.5)
    try:
        bench.loadgen(tools, ["echo", "-p", port, "-c", 1, "-n", n, "-t", 120, "-s", 64,
                              "-w", 0], timeout=180)
    finally:
        tracer.send_signal(2)
        tracer.wait(timeout=10)
    calls = {}
    with open(out) as f:
        for line in f:
            fields = line.split()
            # % time, seconds, usecs/call, calls, [errors,] syscall
            if len(fields) >= 5 and fields[3].isdigit() and fields[-1] != "total":
                calls[fields[-1]] = int(fields[3]) / n
    return {k: v for k, v in calls.items() if v >= 0.05}


def sampled_run(tools, port, cpu, n, out):
    """perf record over CPU `cpu` while loadgen makes n round trips:
    {function: instructions per round trip}."""
    period = 1000003
    argv = ["perf", "record", "-q", "-a", "-C", str(cpu), "-e", "instructions", "-c", str(period),
            "-o", out, "--", tools["loadgen"], "echo", "-p", str(port), "-c", "1", "-n", str(n),
            "-t", "300", "-s", "64", "-w", "0"]
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True, timeout=400)
    r = subprocess.run(["perf", "report", "-i", out, "--stdio", "--sort", "sym",
                        "-F", "sample,sym", "-t", ";"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True)
    per = collections.Counter()
    for line in r.stdout.splitlines():
        if line.startswith("#") or ";" not in line:
            continue
        count, sym = line.split(";", 1)
        if count.strip().isdigit():
            per[sym.strip()] += int(count) * period / n
    return per


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inetd", default=os.path.join(bench.HERE, "..", "..", "build-bench", "inetd"))
    ap.add_argument("--user", default="_inetd", help="the listener's user (-u)")
    ap.add_argument("-n", type=int, default=100000, help="round trips per counted run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=0, help="the CPU everything runs on")
    ap.add_argument("--no-strace", action="store_true", help="skip the system call counts")
    ap.add_argument("--symbols", type=int, default=0,
                    help="list the N functions that differ most (perf record)")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get openbsd-inetd")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("echo_profile: run as root (the monitor binds, then drops to --user)")
    for tool in ["perf"] + ([] if args.no_strace else ["strace"]):
        if shutil.which(tool) is None:
            sys.exit(f"echo_profile: needs {tool} (apt-get install "
                     f"{'linux-perf' if tool == 'perf' else tool})")
    bench.become_subreaper()
    work = tempfile.mkdtemp(prefix="inetd-echoprof-", dir="/var/tmp")
    try:
        tools = bench.build_tools(work)
        tools.update(bench.install_peers(args.no_install))
        if "openbsd-inetd" not in tools:
            sys.exit("echo_profile: openbsd-inetd is not installed")
        tools.update({"inetd": os.path.abspath(args.inetd), "user": args.user, "work": work})
        ports = bench.Ports(24600)
        daemons = [bench.Ours("inetd (ours)", work, tools, [("echo", ports.take())]),
                   bench.OpenBSDInetd("openbsd-inetd", work, tools, [("echo", ports.take())])]
        for d in daemons:
            d.start()
            d.ready()
            pin(d.daemon_pids(), args.cpu)  # openbsd-inetd's echo child inherits it
        os.sched_setaffinity(0, {args.cpu})  # and loadgen inherits ours
        print(f"inetd: {tools['inetd']}; {os.cpu_count()} CPUs, all on CPU {args.cpu}; "
              f"{args.n:,} round trips of 64 bytes a run, {args.rounds} rounds; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        figures = collections.defaultdict(list)
        for r in range(args.rounds):
            for d in daemons:
                d.check_alive()
                out = os.path.join(work, f"perf-{r}-{d.port('echo')}.csv")
                figures[d.name].append(counted_run(tools, d.port("echo"), args.cpu, args.n, out))
        print()
        print("| daemon | round trips/s | p50 µs | p99 µs | instructions/rt, user "
              "| instructions/rt, kernel | cycles/rt |")
        print("|---|---|---|---|---|---|---|")
        med = {}
        for d in daemons:
            runs = figures[d.name]
            med[d.name] = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
            m = med[d.name]
            print(f"| {d.name} | {m['rate']:,.0f} | {m['p50']:.1f} | {m['p99']:.1f} "
                  f"| {m['instructions:u']:,.0f} | {m['instructions:k']:,.0f} "
                  f"| {m['cycles']:,.0f} |")
        a, b = med[daemons[0].name], med[daemons[1].name]
        print(f"| difference | | | | {a['instructions:u'] - b['instructions:u']:+,.0f} "
              f"| {a['instructions:k'] - b['instructions:k']:+,.0f} "
              f"| {a['cycles'] - b['cycles']:+,.0f} ({(a['cycles'] / b['cycles'] - 1) * 100:+.1f}%) |")
        if not args.no_strace:
            print()
            print("Server system calls per round trip (strace -c -f):")
            for d in daemons:
                # ours: the listener serves echo; openbsd-inetd: its child (-f)
                pid = next((p for p in d.daemon_pids()
                            if (bench.exe_of(p) or "").endswith("inetd-listener")), d.pids[0])
                calls = syscalls_per_round_trip(tools, pid, d.port("echo"), min(args.n, 20000),
                                                os.path.join(work, f"strace-{d.port('echo')}.txt"))
                total = sum(calls.values())
                print(f"- {d.name}: {total:.2f}: " +
                      ", ".join(f"{k} {v:.2f}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1])))
        if args.symbols:
            n = max(args.n, 300000)
            per = [sampled_run(tools, d.port("echo"), args.cpu, n,
                               os.path.join(work, f"perf-{d.port('echo')}.data")) for d in daemons]
            print()
            print(f"Functions whose instructions per round trip differ most (perf record, "
                  f"{n:,} round trips each; whole CPU: client, server and kernel):")
            print()
            print(f"| function | {daemons[0].name} | {daemons[1].name} | difference |")
            print("|---|---|---|---|")
            diff = sorted(set(per[0]) | set(per[1]), key=lambda k: -abs(per[0][k] - per[1][k]))
            for k in diff[:args.symbols]:
                print(f"| `{k}` | {per[0][k]:,.0f} | {per[1][k]:,.0f} | {per[0][k] - per[1][k]:+,.0f} |")
            print(f"| all | {sum(per[0].values()):,.0f} | {sum(per[1].values()):,.0f} "
                  f"| {sum(per[0].values()) - sum(per[1].values()):+,.0f} |")
        for d in daemons:
            d.stop()
    finally:
        bench.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
