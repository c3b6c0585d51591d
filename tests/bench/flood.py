#!/usr/bin/env python3
"""Flood benchmark: many connections from many source addresses against a
service with per-IP limits on, while another service must keep answering.

    sudo python3 tests/bench/flood.py --inetd build/inetd
    sudo python3 tests/bench/flood.py --inetd build/inetd --connections 20000 --sources 2000

Not part of the test suite: it prints figures, and fails (exit 1) only when
the daemon died, the other service stopped answering, or the limits did not
count exactly. Needs root (the daemon binds and switches to `nobody`).

What it does:
- starts inetd -d on a temporary inetd.conf with two services on 127.0.0.1:
  FLOOD, `nowait/MAXCHILD/RATE` running /bin/echo (its line tells the
  client it was served: a refused connection is closed without a word), and
  PROBE, plain nowait /bin/echo, never flooded;
- opens CONNECTIONS connections to FLOOD, spread round-robin over SOURCES
  distinct addresses 127.1.x.y (the client socket is bound to its source
  before connect), at most CONCURRENCY in flight, each read to EOF;
- meanwhile connects to PROBE every PROBE_INTERVAL seconds and times it;
- samples VmRSS of the monitor and the listener, and reads their VmHWM
  (peak resident set) at the end.

Exactness: with RATE per source per minute and every source making
CONNECTIONS/SOURCES >= RATE connections within the minute, exactly
SOURCES * RATE are served and the rest refused, each with FreeBSD's
"exceeded counts/min" line. -R is 0 (unlimited) for the run, or FLOOD would
be terminated as looping after 256 spawns.

Everything is bounded: the flood by --time-limit, every wait by a timeout,
and the daemon is killed at the end whatever happened.
"""

import argparse
import errno
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h: pick the port at connect, not bind

# listener/limits.h: 16384 entries of 56 bytes and 8192 child slots of 16.
PER_IP_TABLE_BYTES = 16384 * 56 + 8192 * 16


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def source(i):
    """The i-th source address: 127.1.0.1, 127.1.0.2 ... 250 per /24."""
    return f"127.{1 + i // 62500}.{(i // 250) % 250}.{1 + i % 250}"


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def children_of(pid):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
            out.append(int(p))
    return out


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def probe(port, timeout=2.0):
    """One connection to the probe service: seconds taken, or None."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while True:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
        return time.monotonic() - t0 if b"probe" in data else None
    except OSError:
        return None


class Flood:
    def __init__(self, port, total, sources, concurrency, deadline):
        self.port, self.total, self.sources = port, total, sources
        self.concurrency, self.deadline = concurrency, deadline
        self.sel = selectors.DefaultSelector()
        self.started = self.served = self.refused = self.errors = 0
        self.inflight = {}

    def done(self):
        return self.started >= self.total and not self.inflight

    def start_one(self):
        i = self.started
        self.started += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((source(i % self.sources), 0))
            rc = s.connect_ex(("127.0.0.1", self.port))
            if rc not in (0, errno.EINPROGRESS):
                raise OSError(rc, os.strerror(rc))
        except OSError:
            self.errors += 1
            s.close()
            return
        self.inflight[s.fileno()] = (s, b"")
        self.sel.register(s, selectors.EVENT_READ)

    def finish(self, s, data):
        self.sel.unregister(s)
        del self.inflight[s.fileno()]
        s.close()
        if b"served" in data:
            self.served += 1
        else:
            self.refused += 1

    def step(self, timeout):
        while len(self.inflight) < self.concurrency and self.started < self.total:
            self.start_one()
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            sock, data = self.inflight[s.fileno()]
            try:
                chunk = s.recv(256)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if chunk:
                self.inflight[s.fileno()] = (sock, data + chunk)
            else:
                self.finish(s, data)

    def abandon(self):
        for s, _ in list(self.inflight.values()):
            self.sel.unregister(s)
            s.close()
        self.errors += len(self.inflight)
        self.inflight.clear()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inetd", required=True, help="the inetd binary (inetd-listener beside it)")
    ap.add_argument("--connections", type=int, default=100000)
    ap.add_argument("--sources", type=int, default=10000)
    ap.add_argument("--rate", type=int, default=1,
                    help="max-connections-per-ip-per-minute of the flooded service")
    ap.add_argument("--max-child", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds for the flood")
    ap.add_argument("--probe-interval", type=float, default=0.5)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    ap.add_argument("--keep", action="store_true", help="keep the work directory and log")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("flood.py needs root (inetd binds and switches users)")
    binary = os.path.abspath(args.inetd)
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary}: not executable")
    if args.sources > 250 * 250 * 254:
        sys.exit("--sources: at most 15,875,000")

    tmp = tempfile.mkdtemp(prefix="inetd-flood-")
    os.chmod(tmp, 0o755)
    flood_port, probe_port = free_port(), free_port()
    while probe_port == flood_port:
        probe_port = free_port()
    conf = os.path.join(tmp, "inetd.conf")
    with open(conf, "w") as f:
        f.write(f"127.0.0.1:{flood_port} stream tcp nowait/{args.max_child}/{args.rate} "
                f"nobody /bin/echo echo served\n"
                f"127.0.0.1:{probe_port} stream tcp nowait nobody /bin/echo echo probe\n")
    log_path = os.path.join(tmp, "inetd.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen([binary, "-d", "-u", "nobody", "-R", "0", conf],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    failures = []
    result = {}
    try:
        deadline = time.monotonic() + 10
        while probe(probe_port, 0.5) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"inetd did not start:\n{open(log_path).read()}")
            time.sleep(0.1)
        listener = next((p for p in children_of(proc.pid) if comm(p) == "inetd-listener"), None)
        if listener is None:
            raise SystemExit("no inetd-listener child found")
        pids = {"monitor": proc.pid, "listener": listener}
        rss0 = {k: status_kb(p, "VmRSS") for k, p in pids.items()}

        flood = Flood(flood_port, args.connections, args.sources, args.concurrency,
                      time.monotonic() + args.time_limit)
        probes, rss_peak = [], dict(rss0)
        t0 = next_probe = next_sample = time.monotonic()
        while not flood.done():
            now = time.monotonic()
            if now > flood.deadline:
                flood.abandon()
                failures.append(f"time limit of {args.time_limit} s reached")
                break
            if proc.poll() is not None:
                failures.append(f"inetd exited with {proc.returncode} during the flood")
                break
            if now >= next_probe:
                probes.append(probe(probe_port))
                next_probe = time.monotonic() + args.probe_interval
            if now >= next_sample:
                for k, p in pids.items():
                    v = status_kb(p, "VmRSS")
                    if v is not None:
                        rss_peak[k] = max(rss_peak[k] or 0, v)
                next_sample = now + 0.2
            flood.step(0.05)
        elapsed = time.monotonic() - t0
        hwm = {k: status_kb(p, "VmHWM") for k, p in pids.items()}
        alive = proc.poll() is None
        final_probe = probe(probe_port, 5.0) if alive else None

        time.sleep(0.5)  # the last log lines
        text = open(log_path, errors="replace").read()
        logged = len(re.findall(r"exceeded counts/min \(limit \d+/min\)", text))
        expected_served = min(args.connections, args.sources) * args.rate \
            if args.connections >= args.sources * args.rate else None
        answered = [p for p in probes if p is not None]
        result = {
            "connections": flood.started, "served": flood.served, "refused": flood.refused,
            "client_errors": flood.errors, "seconds": round(elapsed, 2),
            "accepts_per_s": round((flood.served + flood.refused) / elapsed) if elapsed else 0,
            "refusals_logged": logged, "expected_served": expected_served,
            "probes": len(probes), "probes_answered": len(answered),
            "probe_p50_ms": round(sorted(answered)[len(answered) // 2] * 1000, 1) if answered else None,
            "probe_max_ms": round(max(answered) * 1000, 1) if answered else None,
            "rss_start_kb": rss0, "rss_peak_sampled_kb": rss_peak, "vmhwm_kb": hwm,
            "vmhwm_total_kb": sum(v for v in hwm.values() if v),
            "per_ip_table_bytes": PER_IP_TABLE_BYTES,
            "daemon_alive": alive, "probe_after_flood": final_probe is not None,
        }
        if not alive:
            failures.append("the daemon died")
        if final_probe is None:
            failures.append("the probe service does not answer after the flood")
        if len(answered) < len(probes):
            failures.append(f"{len(probes) - len(answered)} of {len(probes)} probes unanswered")
        if expected_served is not None and not failures:
            if flood.served != expected_served:
                failures.append(f"served {flood.served}, expected exactly {expected_served}")
            if logged != flood.refused:
                failures.append(f"{flood.refused} refused but {logged} refusals logged")
        if flood.errors:
            failures.append(f"{flood.errors} client-side errors")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    r = result
    print(f"flood: {r['connections']} connections from {args.sources} sources "
          f"(rate {args.rate}/min per source, max-child {args.max_child}, "
          f"concurrency {args.concurrency})")
    print(f"  served {r['served']}, refused {r['refused']} (logged {r['refusals_logged']}), "
          f"client errors {r['client_errors']}, in {r['seconds']} s: "
          f"{r['accepts_per_s']} accepts/s")
    print(f"  probe service: {r['probes_answered']}/{r['probes']} answered during the flood, "
          f"p50 {r['probe_p50_ms']} ms, max {r['probe_max_ms']} ms; "
          f"after: {'yes' if r['probe_after_flood'] else 'NO'}")
    print(f"  memory: VmRSS at start {r['rss_start_kb']} kB, peak VmHWM {r['vmhwm_kb']} kB, "
          f"monitor+listener {r['vmhwm_total_kb']} kB "
          f"(per-IP table bound {PER_IP_TABLE_BYTES} bytes)")
    if args.json:
        print(json.dumps(r))
    for f in failures:
        print(f"FAIL: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
