#!/usr/bin/env python3
"""Flood benchmark (issue 4): many connections from many source addresses
against a service with limits on, while another service must keep answering;
our inetd alone, or beside openbsd-inetd and xinetd with comparable limits.

    sudo python3 tests/bench/flood.py --inetd build-bench/inetd            # ours, IPv4
    sudo python3 tests/bench/flood.py --inetd build-bench/inetd --family 6 # ours, IPv6
    sudo python3 tests/bench/flood.py --inetd build-bench/inetd --compare  # the table

Needs root (the daemons bind and switch to `nobody`; IPv6 adds a route).
Not part of the test suite: it prints figures, and fails (exit 1) only when
a daemon died, the other service stopped answering, or our limits did not
count exactly. See tests/bench/README.md, "Flood".

One flood: CONNECTIONS connections to FLOOD, spread round-robin over SOURCES
distinct source addresses (the client binds its source before connect), at
most CONCURRENCY in flight, each read to EOF. FLOOD runs /bin/echo served (a
refused connection is closed without a word); PROBE, another service of the
same daemon running /bin/echo probe, is connected to every PROBE_INTERVAL
seconds meanwhile, and once after. Memory: RSS and PSS (smaps_rollup) of the
daemon's processes, summed, sampled every 0.25 s during the flood: the
daemon's own processes (those it had when idle: ours, monitor + listener)
and all of them (the services it forked too, before and after their exec);
the peak of each.

Sources:
- IPv4: 127.1.0.1, 127.1.0.2, ... (250 per /24), to 127.0.0.1.
- IPv6 (--family 6): `ip -6 route add local NET dev lo` makes every address
  of NET local, so a client can bind any of them (IP_FREEBIND); the route is
  removed at the end, whatever happens. --v6-spread host: the sources are
  NET::1, NET::2 ... in one /64 (route NET/64), which our inetd counts as ONE
  client (per-IP limits group IPv6 sources by /64 unless -P says otherwise;
  the flood runs with the default, inetd(8) "Limits"). --v6-spread subnet: one source per
  /64, NET:0:i::1 (route NET/48), 10,000 distinct clients. Ours listens on
  [::1] (tcp6).

Exactness (ours): every client (source, or /64) that makes at least RATE
connections within the minute gets exactly RATE served; the rest are
refused, each with FreeBSD's "exceeded counts/min" line. Checked when the
flood ends within 60 s (the window) and -R does not stop the service first.

--compare: ROUNDS rounds, each with a fresh instance of every daemon, in a
rotated order: ours, openbsd-inetd, xinetd on IPv4, then ours on IPv6 (host
and subnet spread; --no-v6 to leave out). Limits, the same numbers in each
daemon's own terms (none of the peers has a per-source rate):
- children of FLOOD at once, M (--max-child): ours max-child M; xinetd
  `instances = M`; openbsd-inetd has no such limit;
- per source: ours max-connections-per-ip-per-minute RATE; xinetd
  `per_source = RATE` (children at once per source, its only per-source
  limit); openbsd-inetd none;
- invocations of FLOOD per minute, N (--service-rate, default SOURCES x
  RATE, what ours serves): ours -R N; openbsd-inetd `nowait.N` (over it, the
  service is terminated for ten minutes); xinetd `cps = ceil(N/60) 10` (over
  that many a second, the service is disabled for 10 s).
The peers' packaged instances are never used: run.py's installer and daemon
classes start each one in the foreground on a private config file, bound to
loopback high ports. Prints a markdown table (medians over the rounds) and
writes it to RESULTS.md's flood section (the rest of the file is kept).

Everything is bounded: each flood by --time-limit, every wait by a timeout;
every daemon started is stopped (SIGTERM, then SIGKILL, by pid, with the
services it left behind: the script is their subreaper), and the route and
temporary directory removed, on failure and on SIGINT/SIGTERM too.
"""

import argparse
import datetime
import errno
import ipaddress
import json
import math
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # nothing written into the source tree
import run as bench  # noqa: E402  (run.py: installer, daemons, /proc helpers)

IPV6_FREEBIND = 78            # linux/in6.h: bind an address of a `local` route
IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h: pick the port at connect, not bind

# listener/limits.h: 16384 entries of 52 bytes + 16384 hash heads of 4, and
# 8192 child slots of 12 + 8192 heads of 4: 1 MiB, allocated on first use.
PER_IP_TABLE_BYTES = 16384 * 56 + 8192 * 16
# What the listener may grow by during a flood beyond its table before the
# check fails: the pending-spawn queue, protobuf buffers, the allocator.
GROWTH_SLACK_BYTES = 2 << 20

OURS = "inetd (ours)"
PEER_CLASSES = {OURS: bench.Ours, "openbsd-inetd": bench.OpenBSDInetd, "xinetd": bench.Xinetd}
V6_NET = "fd00:1ee7::"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# Sources


def source_v4(i):
    """The i-th IPv4 source: 127.1.0.1, 127.1.0.2 ... 250 per /24."""
    return f"127.{1 + i // 62500}.{(i // 250) % 250}.{1 + i % 250}"


def v6_route(net, spread):
    base = ipaddress.IPv6Address(net)
    return f"{base}/{64 if spread == 'host' else 48}"


def source_v6(i, net, spread):
    base = int(ipaddress.IPv6Address(net))
    if spread == "host":
        return str(ipaddress.IPv6Address(base + i + 1))
    return str(ipaddress.IPv6Address(base + (i << 64) + 1))


def v6_groups(sources, spread):
    """Clients as our per-IP limits count them (by /64)."""
    return 1 if spread == "host" else sources


class LocalRoute:
    """`ip -6 route add local NET dev lo` for the flood, removed after (if
    we added it: a route that was there already is left alone)."""

    def __init__(self, prefix):
        self.prefix, self.added = prefix, False

    def __enter__(self):
        r = subprocess.run(["ip", "-6", "route", "add", "local", self.prefix, "dev", "lo"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        if r.returncode == 0:
            self.added = True
        elif "File exists" not in r.stderr:
            raise RuntimeError(f"ip -6 route add local {self.prefix} dev lo: {r.stderr.strip()}")
        else:
            log(f"route local {self.prefix} already there: used, and left in place")
        return self

    def __exit__(self, *exc):
        if self.added:
            subprocess.run(["ip", "-6", "route", "del", "local", self.prefix, "dev", "lo"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            self.added = False
        return False


# ----------------------------------------------------------------------------
# The client


def probe(host, port, timeout=2.0):
    """One connection to the probe service: seconds taken, or None."""
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while len(data) < 4096:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
        return time.monotonic() - t0 if b"probe" in data else None
    except OSError:
        return None


class Flood:
    """CONNECTIONS connections from `sources` (a function of i), at most
    CONCURRENCY in flight. Each ends as served (the service's line), closed
    (accepted, then closed or reset without a word: refused by the daemon),
    port_closed (ECONNREFUSED: the daemon closed its socket), timed_out (no
    answer and no close within `timeout` s: say, a handshake the kernel
    completed for the client but dropped on the daemon's side, its accept
    queue being full) or an error."""

    def __init__(self, family, dst, port, total, nsources, source, concurrency, timeout):
        self.family, self.dst, self.port = family, dst, port
        self.total, self.nsources, self.source = total, nsources, source
        self.concurrency, self.timeout = concurrency, timeout
        self.sel = selectors.DefaultSelector()
        self.started = self.served = self.closed = self.port_closed = self.errors = 0
        self.timed_out = 0
        self.inflight = {}  # fd -> (socket, data so far, deadline)
        self.next_sweep = 0.0

    def done(self):
        return self.started >= self.total and not self.inflight

    def start_one(self):
        i = self.started
        self.started += 1
        s = socket.socket(self.family, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            if self.family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
            s.bind((self.source(i % self.nsources), 0))
            rc = s.connect_ex((self.dst, self.port))
            if rc == errno.ECONNREFUSED:
                self.port_closed += 1
                s.close()
                return
            if rc not in (0, errno.EINPROGRESS):
                raise OSError(rc, os.strerror(rc))
        except OSError:
            self.errors += 1
            s.close()
            return
        self.inflight[s.fileno()] = (s, b"", time.monotonic() + self.timeout)
        self.sel.register(s, selectors.EVENT_READ)

    def finish(self, s, data, refused=False):
        self.sel.unregister(s)
        del self.inflight[s.fileno()]
        s.close()
        if refused:
            self.port_closed += 1
        elif b"served" in data:
            self.served += 1
        else:
            self.closed += 1

    def step(self, timeout):
        while len(self.inflight) < self.concurrency and self.started < self.total:
            self.start_one()
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            sock, data, deadline = self.inflight[s.fileno()]
            refused = False
            try:
                chunk = s.recv(256)
            except BlockingIOError:
                continue
            except ConnectionRefusedError:
                chunk, refused = b"", True
            except OSError:
                chunk = b""
            if chunk and len(data) < 4096:
                self.inflight[s.fileno()] = (sock, data + chunk, deadline)
            else:
                self.finish(s, data + chunk, refused)
        now = time.monotonic()
        if now >= self.next_sweep:
            self.next_sweep = now + 0.5
            for s, _, deadline in [v for v in self.inflight.values() if v[2] <= now]:
                self.sel.unregister(s)
                del self.inflight[s.fileno()]
                s.close()
                self.timed_out += 1

    def abandon(self):
        for s, _, _ in list(self.inflight.values()):
            self.sel.unregister(s)
            s.close()
        self.errors += len(self.inflight)
        self.inflight.clear()


# ----------------------------------------------------------------------------
# One flood against one daemon


def specs_for(args, flood_host, service_rate):
    """The FLOOD and PROBE services, with each daemon's limits."""
    per_source = max(1, args.rate)
    cps = max(1, math.ceil(service_rate / 60)) if service_rate else 100000000
    flood = dict(argv=["/bin/echo", "echo", "served"], user="nobody", host=flood_host,
                 no_probe=True,  # a readiness probe would spend a source's count
                 inetd_wait=f"nowait/{args.max_child}/{args.rate}",
                 openbsd_wait=f"nowait.{service_rate or 100000000}",
                 xinetd=[f"instances = {args.max_child}", f"per_source = {per_source}",
                         f"cps = {cps} 10"])
    probe_ = dict(argv=["/bin/echo", "echo", "probe"], user="nobody",
                  openbsd_wait="nowait.100000",
                  xinetd=["instances = UNLIMITED", "per_source = UNLIMITED", "cps = 100000000 1"])
    return flood, probe_


def limits_text(name, args, service_rate):
    n = service_rate
    if name == OURS:
        return (f"max-child {args.max_child}, {args.rate}/min per client, "
                + (f"-R {n}" if n else "-R 0"))
    if name == "openbsd-inetd":
        return f"nowait.{n} (per minute; then off 10 min)" if n else "none"
    cps = max(1, math.ceil(n / 60)) if n else "∞"
    return (f"instances {args.max_child}, per_source {max(1, args.rate)}, cps {cps} 10")


def one_flood(name, work, tools, ports, args, family, spread, service_rate):
    """Starts a fresh `name`, floods it, stops it. Returns the figures and
    a list of failures (empty when fine)."""
    v6 = family == 6
    flood_host = "::1" if v6 else "127.0.0.1"
    fport, pport = ports.take(), ports.take()
    fspec, pspec = specs_for(args, flood_host, service_rate)
    opts = {"R": service_rate} if service_rate else {}
    if name == OURS:
        opts = {"R": service_rate or 0}
    tag = f"{name}-v{family}{'-' + spread if v6 else ''}-{fport}"
    d = PEER_CLASSES[name](tag, work, tools, [("prog", fport), ("prog", pport)],
                           specs={fport: fspec, pport: pspec}, options=opts)
    if v6:
        source = lambda i: source_v6(i, args.v6_net, spread)  # noqa: E731
        groups = v6_groups(args.sources, spread)
    else:
        source, groups = source_v4, args.sources
    failures = []
    res = {"daemon": name, "family": family, "spread": spread if v6 else None,
           "limits": limits_text(name, args, service_rate)}
    route = LocalRoute(v6_route(args.v6_net, spread)) if v6 else None
    try:
        if route:
            route.__enter__()
        d.start()
        d.ready()
        root = d.procs[0].pid
        idle = d.daemon_pids()
        rss0, pss0 = bench.memory_kib(idle)
        listener = [p for p in idle if bench.exe_of(p) and
                    bench.exe_of(p).endswith("inetd-listener")]
        lrss0 = bench.memory_kib(listener)[0] if listener else None
        peak = {"rss": rss0, "pss": pss0, "all_rss": rss0, "all_pss": pss0, "listener_rss": lrss0}
        fl = Flood(socket.AF_INET6 if v6 else socket.AF_INET, flood_host, fport,
                   args.connections, args.sources, source, args.concurrency, args.conn_timeout)
        probes = []
        t0 = next_probe = next_sample = time.monotonic()
        deadline = t0 + args.time_limit
        while not fl.done():
            now = time.monotonic()
            if now > deadline:
                fl.abandon()
                failures.append(f"time limit of {args.time_limit} s reached")
                break
            if any(p.poll() is not None for p in d.procs):
                failures.append("the daemon exited during the flood")
                fl.abandon()
                break
            if now >= next_probe:
                probes.append(probe("127.0.0.1", pport))
                next_probe = time.monotonic() + args.probe_interval
            if now >= next_sample:
                # One pass over the tree: the daemon's own processes are the
                # ones it had when idle (a child between fork and exec is a
                # copy of the daemon, but a service's process).
                mem = {p: bench.memory_kib([p]) for p in [root] + bench.descendants(root)}
                r = sum(m[0] for p, m in mem.items() if p in idle)
                ps = sum(m[1] for p, m in mem.items() if p in idle)
                peak["rss"], peak["pss"] = max(peak["rss"], r), max(peak["pss"], ps)
                peak["all_rss"] = max(peak["all_rss"], sum(m[0] for m in mem.values()))
                peak["all_pss"] = max(peak["all_pss"], sum(m[1] for m in mem.values()))
                if listener and listener[0] in mem:
                    peak["listener_rss"] = max(peak["listener_rss"], mem[listener[0]][0])
                next_sample = time.monotonic() + 0.25
            fl.step(0.05)
        elapsed = time.monotonic() - t0
        alive = all(p.poll() is None for p in d.procs)
        after = probe("127.0.0.1", pport, 5.0) if alive else None
        time.sleep(0.5)  # the last log lines
        with open(os.path.join(d.dir, "daemon.log"), errors="replace") as f:
            text = f.read()
        answered = [p for p in probes if p is not None]
        accepted = fl.served + fl.closed
        res.update(
            connections=fl.started, served=fl.served, refused=fl.closed,
            port_closed=fl.port_closed, timed_out=fl.timed_out, client_errors=fl.errors,
            seconds=round(elapsed, 2),
            accepts_per_s=round(accepted / elapsed) if elapsed else 0,
            probes=len(probes), probes_answered=len(answered),
            probe_p50_ms=round(statistics.median(answered) * 1000, 1) if answered else None,
            probe_max_ms=round(max(answered) * 1000, 1) if answered else None,
            probe_after=after is not None, alive=alive,
            rss_idle_kib=rss0, pss_idle_kib=pss0, rss_peak_kib=peak["rss"],
            pss_peak_kib=peak["pss"], all_rss_peak_kib=peak["all_rss"],
            all_pss_peak_kib=peak["all_pss"], processes_idle=len(idle))
        if not alive:
            failures.append("the daemon died")
        if after is None:
            failures.append("the probe service does not answer after the flood")
        if len(answered) < len(probes):
            failures.append(f"{len(probes) - len(answered)} of {len(probes)} probes unanswered")
        if fl.errors:
            failures.append(f"{fl.errors} client-side errors")
        if name == OURS:
            logged = len(re.findall(r"exceeded counts/min \(limit \d+/min\)", text))
            res["refusals_logged"] = logged
            res["looping"] = len(re.findall(r"server failing \(looping\)", text))
            if lrss0 is not None:
                res["listener_growth_kib"] = peak["listener_rss"] - lrss0
                res["listener_bound_kib"] = (PER_IP_TABLE_BYTES + GROWTH_SLACK_BYTES) // 1024
                if res["listener_growth_kib"] * 1024 > PER_IP_TABLE_BYTES + GROWTH_SLACK_BYTES:
                    failures.append(f"listener grew by {res['listener_growth_kib']} KiB, over "
                                    f"the per-IP table ({PER_IP_TABLE_BYTES // 1024} KiB) "
                                    f"+ {GROWTH_SLACK_BYTES >> 10} KiB")
            expected = groups * args.rate if args.connections >= groups * args.rate else None
            within = elapsed < 60.0 and fl.started == args.connections
            over_r = bool(service_rate) and expected is not None and expected > service_rate
            res["expected_served"] = expected
            if expected is None or not within or over_r or res["looping"]:
                res["exact"] = None  # not checkable: say why
                res["exact_why"] = ("flood longer than the 60 s window" if not within else
                                    "-R reached" if over_r or res["looping"] else
                                    "fewer connections than clients x rate")
            else:
                ok = (fl.served == expected and logged == fl.closed and fl.port_closed == 0
                      and fl.timed_out == 0)
                res["exact"] = ok
                if fl.served != expected:
                    failures.append(f"served {fl.served}, expected exactly {expected}")
                if logged != fl.closed:
                    failures.append(f"{fl.closed} refused but {logged} refusals logged")
                if fl.port_closed:
                    failures.append(f"{fl.port_closed} connections refused by the kernel")
                if fl.timed_out:
                    failures.append(f"{fl.timed_out} connections had no answer in "
                                    f"{args.conn_timeout} s")
    except Exception as e:  # one failure does not end a comparison
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        d.stop()
        if route:
            route.__exit__(None, None, None)
    res["failures"] = failures
    return res


# ----------------------------------------------------------------------------
# Output


def print_one(r, args):
    fam = f"IPv{r['family']}" + (f", {r['spread']} spread" if r.get("spread") else "")
    print(f"flood ({r['daemon']}, {fam}): {r.get('connections', 0)} connections from "
          f"{args.sources} sources (limits: {r['limits']}; concurrency {args.concurrency})")
    if "served" in r:
        extra = (f" (logged {r['refusals_logged']})" if "refusals_logged" in r else "")
        print(f"  served {r['served']}, refused {r['refused']}{extra}, port closed "
              f"{r['port_closed']}, no answer {r['timed_out']}, client errors "
              f"{r['client_errors']}, in {r['seconds']} s: "
              f"{r['accepts_per_s']} accepts/s")
        if r.get("expected_served") is not None:
            ex = r.get("exact")
            print(f"  expected served {r['expected_served']}: "
                  + ("exact" if ex else "NOT exact" if ex is False else
                     f"not checked ({r.get('exact_why')})"))
        print(f"  probe service: {r['probes_answered']}/{r['probes']} answered during the "
              f"flood, p50 {r['probe_p50_ms']} ms, max {r['probe_max_ms']} ms; after: "
              f"{'yes' if r['probe_after'] else 'NO'}")
        print(f"  memory, daemon ({r['processes_idle']} processes): RSS {r['rss_idle_kib']} KiB "
              f"idle, peak {r['rss_peak_kib']} KiB; PSS {r['pss_idle_kib']} -> "
              f"{r['pss_peak_kib']} KiB; with its children, peak RSS {r['all_rss_peak_kib']} "
              f"KiB, PSS {r['all_pss_peak_kib']} KiB")
        if "listener_growth_kib" in r:
            print(f"  listener RSS growth {r['listener_growth_kib']} KiB (bound: per-IP table "
                  f"{PER_IP_TABLE_BYTES // 1024} KiB + {GROWTH_SLACK_BYTES >> 10} KiB slack)")
    for f in r["failures"]:
        print(f"FAIL: {f}")


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def cell(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    m = f"{statistics.median(xs):,.0f}"
    if len(xs) == 1 or min(xs) == max(xs):
        return m
    return f"{m} ({min(xs):,.0f}–{max(xs):,.0f})"


def table(rows, meta):
    """rows: {(daemon, flood label): [results over rounds]}."""
    L = ["## Flood: accepts under a flood with limits on (tests/bench/flood.py --compare)", ""]
    L.append(f"- date: {meta['date']}; machine: {meta['machine']}; load average before / "
             f"after: {meta['load0']} / {meta['load1']}")
    L.append(f"- command: `{meta['command']}`")
    L.append(f"- inetd: `{meta['inetd']}` (tree {meta['rev']}); {meta['versions']}")
    L.append(f"- flood: {meta['connections']:,} connections from {meta['sources']:,} sources, "
             f"{meta['concurrency']} in flight, to FLOOD (/bin/echo served, as nobody); PROBE "
             f"(/bin/echo probe) every {meta['probe_interval']} s meanwhile and once after. "
             f"{meta['rounds']} rounds, a fresh daemon for each flood, interleaved; cells are "
             f"median (min–max) over the rounds. Run time {meta['elapsed']}.")
    L.append("- *accepted/s*: connections the daemon accepted (served + refused) per second "
             "of the flood; *refused*: accepted and closed without a word; *port closed*: "
             "refused by the kernel (ECONNREFUSED), the daemon having closed FLOOD's socket; "
             f"*no answer*: neither a byte nor a close within {meta['conn_timeout']} s (the "
             "client was left with a connection the daemon's side dropped: its accept queue "
             "was full); "
             "*peak memory*: RSS / PSS summed over the daemon's own processes (those it had "
             "when idle; ours: monitor + listener), and over all its processes (the services "
             "it forked too, before and after exec), sampled every 0.25 s; *other service*: "
             "PROBE answered every time during and after.")
    L.append("")
    L.append("| daemon | flood | limits | accepted/s | served | refused | port closed | "
             "no answer | flood s | peak memory, daemon: RSS / PSS KiB | peak, with children: "
             "RSS / PSS KiB | other service answers | limits exact |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, label), rs in rows.items():
        ok = [r for r in rs if "served" in r]
        g = lambda k: [r.get(k) for r in ok]  # noqa: E731
        answers = "yes" if ok and all(r["probe_after"] and r["probes_answered"] == r["probes"]
                                      and r["alive"] for r in ok) else "**no**"
        if ok:
            answers += (f" ({sum(r['probes_answered'] for r in ok)}/"
                        f"{sum(r['probes'] for r in ok)})")
        exact = [r.get("exact") for r in ok]
        why = sorted({r.get("exact_why", "?") for r in ok if r.get("exact") is None})
        if name != OURS or not ok:
            ex = "-"
        elif any(e is False for e in exact):
            ex = f"**no** ({exact.count(False)} of {len(exact)} rounds)"
        elif all(e is True for e in exact):
            ex = f"yes ({ok[0]['expected_served']:,} served, every refusal logged)"
        elif any(e is True for e in exact):
            ex = (f"yes in {exact.count(True)} of {len(exact)} rounds ("
                  f"{ok[0]['expected_served']:,} served, every refusal logged); the others not "
                  f"checked: {', '.join(why)}")
        else:
            ex = f"not checked: {', '.join(why)}"
        L.append("| " + " | ".join([
            name, label, ok[0]["limits"] if ok else "-", cell(g("accepts_per_s")),
            cell(g("served")), cell(g("refused")), cell(g("port_closed")),
            cell(g("timed_out")), cell(g("seconds")),
            f"{cell(g('rss_peak_kib'))} / {cell(g('pss_peak_kib'))}",
            f"{cell(g('all_rss_peak_kib'))} / {cell(g('all_pss_peak_kib'))}",
            answers, ex]) + " |")
    growth = [r.get("listener_growth_kib") for rs in rows.values() for r in rs
              if r.get("listener_growth_kib") is not None]
    if growth:
        L.append("")
        L.append(f"Our listener's RSS grew by at most {max(growth):,} KiB during a flood "
                 f"(median {med(growth):,.0f} KiB); its per-IP table, allocated on first use, "
                 f"is {PER_IP_TABLE_BYTES // 1024:,} KiB (16,384 client/service pairs, "
                 f"least recently seen evicted first).")
    L.append("")
    L.append("IPv6: our per-IP limits count an IPv6 client by its /64 (the default of "
             "`-P prefixlen`, used here): the *host* flood's "
             f"{meta['sources']:,} addresses in one /64 are one client, the *subnet* flood "
             f"has one address in each of {meta['sources']:,} /64s.")
    if meta["problems"]:
        L.append("")
        L.append("Problems during the run:")
        L.append("")
        L.extend(f"- {p}" for p in meta["problems"])
    return "\n".join(L) + "\n"


# ----------------------------------------------------------------------------


def setup(args):
    if os.geteuid() != 0:
        sys.exit("flood.py needs root (the daemons bind and switch users)")
    args.inetd = os.path.abspath(args.inetd)
    if not os.access(args.inetd, os.X_OK):
        sys.exit(f"{args.inetd}: not executable; build it: meson setup build-bench "
                 f"--buildtype=release && ninja -C build-bench")
    if args.sources > 250 * 250 * 254 or (args.family == 6 or args.compare) and \
            args.sources > 65535:
        sys.exit("--sources: too many")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, bench.on_signal)  # stops every daemon, then exits
    bench.become_subreaper()
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inetd", default=os.path.join(REPO, "build-bench", "inetd"),
                    help="our inetd binary (inetd-listener beside it); default build-bench/inetd")
    ap.add_argument("--user", default="nobody", help="our listener's user (-u)")
    ap.add_argument("--connections", type=int, default=100000)
    ap.add_argument("--sources", type=int, default=10000)
    ap.add_argument("--rate", type=int, default=1,
                    help="max-connections-per-ip-per-minute of the flooded service")
    ap.add_argument("--max-child", type=int, default=64)
    ap.add_argument("--service-rate", type=int,
                    help="invocations of FLOOD per minute (ours -R, openbsd-inetd nowait.N, "
                    "xinetd cps N/60); default: 0 alone (-R 0), SOURCES x RATE with --compare")
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds for one flood")
    ap.add_argument("--probe-interval", type=float, default=0.5)
    ap.add_argument("--conn-timeout", type=float, default=5.0,
                    help="seconds a flood connection may wait for its answer or close")
    ap.add_argument("--family", type=int, choices=(4, 6), default=4, help="ours alone: 4 or 6")
    ap.add_argument("--v6-net", default=V6_NET, help="IPv6 source network (a /48 is routed "
                    "for --v6-spread subnet, a /64 for host)")
    ap.add_argument("--v6-spread", choices=("host", "subnet"), default="subnet",
                    help="IPv6 sources in one /64 (host) or one per /64 (subnet)")
    ap.add_argument("--compare", action="store_true",
                    help="ours beside openbsd-inetd and xinetd, and ours on IPv6; writes the "
                    "table to --out's flood section")
    ap.add_argument("--rounds", type=int, default=3, help="--compare: rounds")
    ap.add_argument("--peers", default="openbsd-inetd,xinetd", help="--compare: peers")
    ap.add_argument("--no-v6", action="store_true", help="--compare: no IPv6 floods")
    ap.add_argument("--no-install", action="store_true", help="use only peers already present")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--base-port", type=int, default=23000)
    ap.add_argument("--workdir", default="/var/tmp")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    ap.add_argument("--report", metavar="JSON", help="only rewrite --out's flood section from "
                    "an earlier --compare run's FLOOD.json")
    ap.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            saved = json.load(f)
        rows = {tuple(k.split(" | ", 1)): v for k, v in saved["results"].items()}
        text = table(rows, saved["meta"])
        bench.write_section(args.out, "flood", text)
        print(text)
        return 0
    setup(args)

    t_start = time.monotonic()
    with open("/proc/loadavg") as f:
        load0 = " ".join(f.read().split()[:3])
    tools = {"inetd": args.inetd, "user": args.user, "hello": "/nonexistent"}
    problems = []
    if args.compare:
        found = bench.install_peers(args.no_install)
        for n in PEER_CLASSES:
            if n != OURS and n not in found and n in args.peers.split(","):
                problems.append(f"{n}: not available, left out")
        tools.update(found)
    work = tempfile.mkdtemp(prefix="inetd-flood-", dir=args.workdir)
    os.chmod(work, 0o755)
    ports = bench.Ports(args.base_port)
    failed = False
    try:
        if not args.compare:
            rate = args.service_rate or 0
            r = one_flood(OURS, work, tools, ports, args, args.family, args.v6_spread, rate)
            print_one(r, args)
            if args.json:
                print(json.dumps(r))
            return 1 if r["failures"] else 0

        rate = args.service_rate if args.service_rate is not None else args.sources * args.rate
        runs = [(OURS, 4, None)] + [(n, 4, None) for n in ("openbsd-inetd", "xinetd")
                                    if n in args.peers.split(",") and n in tools]
        if not args.no_v6:
            runs += [(OURS, 6, "host"), (OURS, 6, "subnet")]
        label = lambda fam, spread: (f"IPv4, {args.sources:,} addresses" if fam == 4 else  # noqa
                                     f"IPv6 {spread}: " + (
                                         f"{args.sources:,} addresses in one /64" if
                                         spread == "host" else
                                         f"{args.sources:,} /64s"))
        rows = {(n, label(f, s)): [] for n, f, s in runs}
        for rnd in range(args.rounds):
            order = runs[rnd % len(runs):] + runs[:rnd % len(runs)]
            for n, fam, spread in order:
                log(f"round {rnd + 1}/{args.rounds}: {n}, IPv{fam}"
                    + (f" {spread}" if spread else ""))
                r = one_flood(n, work, tools, ports, args, fam, spread, rate)
                rows[(n, label(fam, spread))].append(r)
                for f in r["failures"]:
                    problems.append(f"round {rnd + 1}, {n}, IPv{fam}"
                                    + (f" {spread}" if spread else "") + f": {f}")
                    if n == OURS:
                        failed = True
                log(f"  {r.get('accepts_per_s', '-')} accepted/s, served {r.get('served')}, "
                    f"refused {r.get('refused')}, port closed {r.get('port_closed')}, "
                    f"no answer {r.get('timed_out')}, "
                    f"{r.get('seconds')} s" + (f"; FAIL {r['failures']}" if r["failures"] else ""))
        with open("/proc/loadavg") as f:
            load1 = " ".join(f.read().split()[:3])
        versions = [f"openbsd-inetd {bench.deb_version('openbsd-inetd')}"] \
            if "openbsd-inetd" in tools else []
        if "xinetd" in tools:
            versions.append(f"xinetd {bench.xinetd_version(tools['xinetd'])}")
        meta = dict(
            date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            machine=bench.machine(), load0=load0, load1=load1, inetd=args.inetd,
            rev=bench.git_rev(), versions="; ".join(versions) or "no peers",
            connections=args.connections, sources=args.sources, concurrency=args.concurrency,
            probe_interval=args.probe_interval, rounds=args.rounds,
            conn_timeout=args.conn_timeout,
            elapsed=f"{(time.monotonic() - t_start) / 60:.1f} min", problems=problems,
            command="python3 tests/bench/flood.py " + " ".join(
                os.path.relpath(a, REPO) if a == args.inetd else a for a in sys.argv[1:]))
        text = table(rows, meta)
        bench.write_section(args.out, "flood", text)
        with open(os.path.join(os.path.dirname(args.out), "FLOOD.json"), "w") as f:
            json.dump({"meta": meta, "results": {f"{k[0]} | {k[1]}": v
                                                 for k, v in rows.items()}}, f, indent=1)
        print(text)
        return 1 if failed else 0
    finally:
        bench.stop_all()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
