#!/usr/bin/env python3
"""The super-server benchmark (issue 10): our inetd against the Debian peers
and the fork+exec floor, on loopback. See tests/bench/README.md.

    sudo python3 tests/bench/run.py --inetd build-bench/inetd [--quick]

Runs as root. Installs the peers if missing (openbsd-inetd, ucspi-tcp and
systemd with apt-get, their init scripts kept from starting; xinetd, which
conflicts with openbsd-inetd in dpkg, is unpacked with apt-get download and
dpkg-deb -x into /var/cache/inetd-bench), builds loadgen.c, floor.c and
hello.c with cc, runs every daemon in the foreground on its own config file
in a temporary directory, runs workloads A-D interleaved over the rounds,
and writes RESULTS.md (and prints it). Every process it starts is stopped at
the end, the services' children too (the script is their subreaper).
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import resource
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
CACHE = "/var/cache/inetd-bench"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# ----------------------------------------------------------------------------
# Processes: everything we start is tracked and stopped by pid.

STARTED = []  # subprocess.Popen of every daemon we started


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def ppid_map():
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            out[int(d)] = int(s[s.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            pass
    return out


def descendants(pid, pmap=None):
    pmap = pmap if pmap is not None else ppid_map()
    kids = {}
    for p, pp in pmap.items():
        kids.setdefault(pp, []).append(p)
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def reap_orphans():
    """Services that outlived their daemon were reparented to us (we are a
    subreaper): kill those, by pid, and reap them. Only our direct children:
    the processes of daemons still running (our listener, a peer's
    children) are theirs, not orphans. (Killing every descendant here once
    killed our running listener at each stop of another daemon; the monitor
    restarted it and its CPU went uncounted.)"""
    me = os.getpid()
    ours = {p.pid for p in STARTED}
    for _ in range(3):
        pmap = ppid_map()
        stray = [p for p, pp in pmap.items() if pp == me and p not in ours]
        # Not the tools we run in the foreground either (those are waited
        # for by subprocess; they have ended by now).
        for p in stray:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if not stray:
            return
        time.sleep(0.1)


def stop(proc, grace=3.0):
    """SIGTERM the daemon, then SIGKILL it and whatever it left behind."""
    if proc.poll() is None:
        tree = descendants(proc.pid)
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        for p in tree:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if proc in STARTED:
        STARTED.remove(proc)
    reap_orphans()


def stop_all():
    for p in list(STARTED):
        try:
            stop(p, grace=1.0)
        except Exception as e:  # keep stopping the others
            log(f"stopping {p.args}: {e}")
    reap_orphans()


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def become_subreaper():
    PR_SET_CHILD_SUBREAPER = 36
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


# ----------------------------------------------------------------------------
# /proc figures


def cpu_seconds(pids):
    """CPU time of the processes themselves (not their children), and their
    time runnable but waiting for a CPU: /proc/PID/schedstat, in ns. Not
    utime + stime: those are sampled at the tick, and on this VM they
    missed about a third of a daemon that runs in short bursts."""
    run = wait = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/schedstat") as f:
                fields = f.read().split()
            run += int(fields[0]) / 1e9
            wait += int(fields[1]) / 1e9
        except (OSError, ValueError, IndexError):
            try:  # no schedstat (CONFIG_SCHED_INFO off): utime + stime
                with open(f"/proc/{p}/stat") as f:
                    s = f.read()
                fields = s[s.rindex(")") + 2:].split()
                run += (int(fields[11]) + int(fields[12])) / TICK  # stat(5) fields 14, 15
            except (OSError, ValueError):
                pass
    return run, wait


def memory_kib(pids):
    rss = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def tcp_mem_kib():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                w = line.split()
                return int(w[w.index("mem") + 1]) * PAGE // 1024
    return 0


def listening(port):
    want = f":{port:04X}"
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                for line in f.readlines()[1:]:
                    w = line.split()
                    if w[1].endswith(want) and w[3] == "0A":
                        return True
        except OSError:
            pass
    return False


def port_free(port):
    for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "0.0.0.0")):
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.bind((addr, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def cpu_busy(interval=1.0):
    """Fraction of the machine's CPU time that was busy over `interval`."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]  # idle + iowait
        return sum(v[:8]), idle
    t0, i0 = sample()
    time.sleep(interval)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def wait_quiet(limit, threshold=0.25):
    """Wait up to `limit` seconds for other work on the machine to calm
    down (our daemons are idle between rounds). Returns the busy fraction
    last seen."""
    deadline = time.monotonic() + limit
    b = cpu_busy(0.5)
    while b >= threshold and time.monotonic() < deadline:
        b = cpu_busy(1.0)
    return b


class Ports:
    def __init__(self, base):
        self.next = base

    def take(self):
        while self.next < 32000:
            p = self.next
            self.next += 1
            if port_free(p):
                return p
        raise RuntimeError("no free port below 32000")


# ----------------------------------------------------------------------------
# Installing the peers


def run_quiet(argv, env=None, timeout=600):
    return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def deb_installed(pkg):
    r = run_quiet(["dpkg-query", "-W", "-f=${Status}", pkg])
    return r.returncode == 0 and "install ok installed" in r.stdout


def deb_version(pkg):
    r = run_quiet(["dpkg-query", "-W", "-f=${Version}", pkg])
    return r.stdout.strip() if r.returncode == 0 else "?"


def apt_install(pkgs):
    """apt-get install with the packages' services kept from starting:
    RUNLEVEL=1 and, if the host has none, a policy-rc.d that says no."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", RUNLEVEL="1")
    policy = "/usr/sbin/policy-rc.d"
    ours = not os.path.exists(policy)
    if ours:
        with open(policy, "w") as f:
            f.write("#!/bin/sh\n# inetd benchmark: no service starts during apt-get\nexit 101\n")
        os.chmod(policy, 0o755)
    try:
        argv = ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + pkgs
        r = run_quiet(argv, env)
        if r.returncode != 0:
            run_quiet(["apt-get", "update", "-q"], env)
            r = run_quiet(argv, env)
        if r.returncode != 0:
            raise RuntimeError(f"apt-get install {' '.join(pkgs)} failed:\n{r.stdout[-2000:]}")
    finally:
        if ours:
            os.unlink(policy)


def stop_package_service(name, exe):
    """If a package we just installed did start its daemon anyway (a host
    without policy-rc.d support), stop it through its init system."""
    running = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/exe") == exe and os.getppid() != int(d):
                    running.append(int(d))
            except OSError:
                pass
    if not running:
        return
    if os.path.isdir("/run/systemd/system"):
        run_quiet(["systemctl", "stop", f"{name}.service"])
        run_quiet(["systemctl", "disable", f"{name}.service"])
    elif os.path.exists(f"/etc/init.d/{name}"):
        run_quiet([f"/etc/init.d/{name}", "stop"])


def install_peers(skip):
    """Returns {peer: path to its binary}. `skip`: do not install."""
    tools = {}
    need = []
    if not deb_installed("openbsd-inetd"):
        need.append("openbsd-inetd")
    if not shutil.which("tcpserver"):
        need.append("ucspi-tcp")
    if not shutil.which("systemd-socket-activate"):
        need.append("systemd")
    if need and not skip:
        log(f"installing {' '.join(need)} (apt-get, services kept stopped)")
        apt_install(need)
        if "openbsd-inetd" in need:
            stop_package_service("inetd", "/usr/sbin/inetd")
    if deb_installed("openbsd-inetd"):
        tools["openbsd-inetd"] = "/usr/sbin/inetd"
    if shutil.which("tcpserver"):
        tools["tcpserver"] = shutil.which("tcpserver")
    if shutil.which("systemd-socket-activate"):
        tools["systemd-socket-activate"] = shutil.which("systemd-socket-activate")
    # xinetd Conflicts: inet-superserver (openbsd-inetd), so both cannot be
    # installed: use an installed one, else unpack the package privately.
    xinetd = "/usr/sbin/xinetd" if deb_installed("xinetd") else f"{CACHE}/xinetd/usr/sbin/xinetd"
    if not os.path.exists(xinetd) and not skip:
        log(f"unpacking xinetd into {CACHE}/xinetd (apt-get download; dpkg-deb -x)")
        os.makedirs(CACHE, exist_ok=True)
        dl = tempfile.mkdtemp(dir=CACHE)
        try:
            os.chmod(dl, 0o777)  # _apt downloads into it
            r = subprocess.run(["apt-get", "download", "-q", "xinetd"], cwd=dl, text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            debs = [f for f in os.listdir(dl) if f.endswith(".deb")]
            if r.returncode != 0 or not debs:
                raise RuntimeError(f"apt-get download xinetd failed:\n{r.stdout[-2000:]}")
            run_quiet(["dpkg-deb", "-x", os.path.join(dl, debs[0]), f"{CACHE}/xinetd"])
            with open(f"{CACHE}/xinetd/VERSION", "w") as f:
                f.write(run_quiet(["dpkg-deb", "-f", os.path.join(dl, debs[0]),
                                   "Version"]).stdout.strip())
        finally:
            shutil.rmtree(dl, ignore_errors=True)
        libs = run_quiet(["ldd", xinetd]).stdout
        if "not found" in libs:
            apt_install(["libtirpc3", "libwrap0", "libselinux1"])
    if os.path.exists(xinetd):
        tools["xinetd"] = xinetd
    return tools


def xinetd_version(path):
    if path.startswith(CACHE):
        try:
            with open(f"{CACHE}/xinetd/VERSION") as f:
                return f.read().strip() + " (unpacked)"
        except OSError:
            return "?"
    return deb_version("xinetd")


# ----------------------------------------------------------------------------
# Building the C programs


def build_tools(work):
    cc = os.environ.get("CC", "cc")
    out = {}
    for name in ("loadgen", "floor"):
        exe = os.path.join(work, name)
        subprocess.run([cc, "-O2", "-Wall", "-o", exe, os.path.join(HERE, name + ".c")], check=True)
        out[name] = exe
    # floor-fat: the floor with the monitor's libraries mapped (run.py
    # --variants), to see what their mappings cost fork.
    fat = os.path.join(work, "floor-fat")
    r = subprocess.run([cc, "-O2", "-Wall", "-o", fat, os.path.join(HERE, "floor.c"),
                        "-Wl,--no-as-needed", "-lprotobuf-lite", "-lstdc++", "-lseccomp",
                        "-lcap-ng", "-lm", "-Wl,--as-needed"], stderr=subprocess.PIPE, text=True)
    if r.returncode == 0:
        out["floor-fat"] = fat
    hello = os.path.join(work, "hello")
    r = subprocess.run([cc, "-O2", "-Wall", "-static", "-s", "-o", hello,
                        os.path.join(HERE, "hello.c")], stderr=subprocess.PIPE, text=True)
    if r.returncode == 0:
        out["hello_kind"] = "static"
    else:
        subprocess.run([cc, "-O2", "-Wall", "-s", "-o", hello, os.path.join(HERE, "hello.c")],
                       check=True)
        out["hello_kind"] = "dynamic (no static libc)"
    out["hello"] = hello
    os.chmod(work, 0o755)  # services may run as another user
    return out


# ----------------------------------------------------------------------------
# The daemons. Each is started on its own config in its own directory, in
# the foreground, and knows its ports and its own processes.


class Daemon:
    """One peer with a set of services: list of (kind, port), kind is
    'spawn' (hello), 'echo', 'chargen' (internal where the daemon has them)
    or 'ext-echo', 'ext-chargen' (hello echo / hello chargen), or 'prog':
    any program, as `specs[port]` says (flood.py):
      argv: [path, argv0, args...]; user (default root); host (default
      127.0.0.1; ours only: an IPv6 host such as ::1, bracketed in the
      entry); limits, each daemon in its own words: inetd_wait (ours, the
      wait/nowait field: "nowait/64/1"), openbsd_wait ("nowait.10000"),
      xinetd (extra attribute lines: ["instances = 64", "cps = 167 10"]).
    `options`: daemon-wide; "R": the -R value of ours and openbsd-inetd
    (default: none, 0 / 100000000)."""
    internal = False  # serves echo/chargen itself
    multi = True      # one process serves many services

    def __init__(self, name, work, tools, services, specs=None, options=None):
        self.name = name
        self.dir = os.path.join(work, "d", "".join(c if c.isalnum() or c in "-." else "_"
                                              for c in name))
        os.makedirs(self.dir, exist_ok=True)
        self.tools = tools
        self.services = services
        self.specs = specs or {}
        self.options = options or {}
        self.procs = []
        self.pids = []

    def host_of(self, port):
        return self.specs.get(port, {}).get("host", "127.0.0.1")

    def proc_for(self, kind):
        """The process that serves `kind` (one per service unless multi)."""
        if self.multi:
            return self.procs[0]
        for (k, _), p in zip(self.services, self.procs):
            if k == kind:
                return p
        return None

    def port(self, kind):
        for k, p in self.services:
            if k == kind:
                return p
        return None

    def spawn(self, argv, env=None, tag=""):
        logf = open(os.path.join(self.dir, f"daemon{tag}.log"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                             env=env if env is not None else clean_env(), cwd=self.dir)
        logf.close()
        STARTED.append(p)
        self.procs.append(p)
        return p

    def start(self):
        raise NotImplementedError

    def ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{self.name} exited ({p.returncode}); see {self.dir}")
            if all(listening(port) for _, port in self.services):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{self.name}: not listening after {timeout} s; see {self.dir}")
        # One exchange per service: the daemon is serving, not just bound.
        for kind, port in self.services:
            if self.no_probe(port):
                continue
            if not probe(kind, port, self.host_of(port)):
                time.sleep(0.3)
                if not probe(kind, port, self.host_of(port)):
                    raise RuntimeError(f"{self.name}: {kind} on {port} does not answer")
        time.sleep(0.2)
        self.pids = self.daemon_pids()

    def no_probe(self, port):
        """A service ready() must not connect to (a probe would spend its
        limits): its port is only waited for."""
        return self.specs.get(port, {}).get("no_probe", False)

    def daemon_pids(self):
        """The daemon's own processes when idle (no service running)."""
        return [p.pid for p in self.procs]

    def check_alive(self):
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{self.name} died ({p.returncode}); see {self.dir}")

    def stop(self):
        for p in self.procs:
            stop(p)
        self.procs = []


def exe_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def clean_env():
    return {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL": "C"}


def probe(kind, port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            if kind in ("echo", "ext-echo"):
                s.sendall(b"probe\n")
                return s.recv(64) != b""
            data = s.recv(64)
            return data != b""
    except OSError:
        return False


class Ours(Daemon):
    internal = True
    binary = "inetd"

    def start(self):
        conf = ["127.0.0.1:"]
        for kind, port in self.services:
            if kind == "spawn":
                conf.append(f"{port}\tstream\ttcp\tnowait\troot\t{self.tools['hello']}\thello")
            elif kind in ("echo", "chargen"):
                conf.append(f"{port}\tstream\ttcp\tnowait\troot\tinternal\t{kind}")
            elif kind == "prog":
                sp = self.specs[port]
                host = sp.get("host", "127.0.0.1")
                v6 = ":" in host
                conf.append(f"{'[' + host + ']' if v6 else host}:{port}\tstream\t"
                            f"{'tcp6' if v6 else 'tcp'}\t{sp.get('inetd_wait', 'nowait')}\t"
                            f"{sp.get('user', 'root')}\t" + "\t".join(sp["argv"]))
        path = os.path.join(self.dir, "inetd.conf")
        with open(path, "w") as f:
            f.write("\n".join(conf) + "\n")
        # -d: foreground (no per-connection log); -R 0: no invocation rate
        # limit (FreeBSD's default of 256 a minute would throttle workload A).
        self.spawn([self.tools[self.binary], "-d", "-R", str(self.options.get("R", 0)),
                    "-u", self.tools["user"], path])

    def daemon_pids(self):
        m = self.procs[0].pid
        # The monitor, the listener (and any helper), not a service child.
        progs = {self.tools["hello"]} | {os.path.realpath(sp["argv"][0])
                                         for sp in self.specs.values()}
        return [m] + [p for p in descendants(m) if exe_of(p) not in progs]


class OursOther(Ours):
    """--also-inetd: another build of ours (say, with a change to measure),
    run in every workload beside ours."""
    binary = "inetd-other"


class OpenBSDInetd(Daemon):
    internal = True

    def start(self):
        # Its built-ins are found by service name, so "echo" and "chargen"
        # must name our ports: a private /etc/services, bind-mounted in a
        # mount namespace of its own (the host's file is not touched).
        svc = []
        conf = ["127.0.0.1:"]
        for kind, port in self.services:
            if kind == "spawn":
                conf.append(f"{port}\tstream\ttcp\tnowait.1000000\troot\t{self.tools['hello']}\thello")
            elif kind in ("echo", "chargen"):
                conf.append(f"{kind}\tstream\ttcp\tnowait.1000000\troot\tinternal")
                svc.append(f"{kind}\t{port}/tcp")
            elif kind == "prog":
                sp = self.specs[port]
                conf.append(f"{port}\tstream\ttcp\t{sp.get('openbsd_wait', 'nowait.1000000')}\t"
                            f"{sp.get('user', 'root')}\t" + "\t".join(sp["argv"]))
        services = os.path.join(self.dir, "services")
        with open(services, "w") as f:
            f.write("\n".join(svc) + "\n")
        path = os.path.join(self.dir, "inetd.conf")
        with open(path, "w") as f:
            f.write("\n".join(conf) + "\n")
        # -i: foreground without debug output; -R: no rate limit.
        inetd = self.tools["openbsd-inetd"]
        rate = str(self.options.get("R", 100000000))
        if svc:
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    'mount --bind "$0" /etc/services && exec "$@"', services,
                    inetd, "-i", "-R", rate, path]
        else:
            argv = [inetd, "-i", "-R", rate, path]
        self.spawn(argv)


class Xinetd(Daemon):
    internal = True

    def start(self):
        conf = ["defaults", "{",
                f"\tlog_type = FILE {self.dir}/xinetd-services.log",
                "\tlog_on_success =", "\tlog_on_failure =",
                "\tinstances = UNLIMITED", "\tper_source = UNLIMITED",
                "\tcps = 100000000 1", "}"]
        for kind, port in self.services:
            if kind == "spawn":
                conf += [f"service bench-{port}", "{", "\ttype = UNLISTED",
                         f"\tserver = {self.tools['hello']}"]
            elif kind == "prog":
                sp = self.specs[port]
                conf += [f"service bench-{port}", "{", "\ttype = UNLISTED",
                         f"\tserver = {sp['argv'][0]}"]
                if len(sp["argv"]) > 2:
                    conf.append("\tserver_args = " + " ".join(sp["argv"][2:]))
                conf += [f"\t{line}" for line in sp.get("xinetd", [])]
                conf += ["\tsocket_type = stream", "\tprotocol = tcp", "\twait = no",
                         f"\tuser = {sp.get('user', 'root')}", f"\tport = {port}",
                         "\tbind = 127.0.0.1", "}"]
                continue
            else:
                conf += [f"service {kind}", "{", "\ttype = INTERNAL UNLISTED",
                         f"\tid = {kind}-stream"]
            conf += ["\tsocket_type = stream", "\tprotocol = tcp", "\twait = no",
                     "\tuser = root", f"\tport = {port}", "\tbind = 127.0.0.1", "}"]
        path = os.path.join(self.dir, "xinetd.conf")
        with open(path, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.spawn([self.tools["xinetd"], "-dontfork", "-f", path])


class Tcpserver(Daemon):
    multi = False

    def start(self):
        for kind, port in self.services:
            # -R -H -l 0: no ident, no DNS; -c: no concurrency cap of 40.
            self.spawn(["tcpserver", "-R", "-H", "-l", "0", "-c", "100000", "-b", "4096",
                        "127.0.0.1", str(port)] + service_argv(self.tools, kind), tag=f"-{port}")


class SocketActivate(Daemon):
    multi = False

    def start(self):
        env = dict(clean_env(), SYSTEMD_LOG_LEVEL="err")  # no line per connection
        for kind, port in self.services:
            self.spawn([self.tools["systemd-socket-activate"], "--inetd", "-a", "-l",
                        f"127.0.0.1:{port}"] + service_argv(self.tools, kind), env=env,
                       tag=f"-{port}")


class Floor(Daemon):
    multi = False
    binary, flags = "floor", []

    def start(self):
        for kind, port in self.services:
            self.spawn([self.tools[self.binary]] + self.flags + [str(port)]
                       + service_argv(self.tools, kind), tag=f"-{port}")


# --variants: spawn strategies, workload A only. "fat": the monitor's
# libraries mapped and 512 KiB of small heap blocks dirtied, as a C++
# daemon has; "posix_spawn": clone(CLONE_VM|CLONE_VFORK) instead of fork.
class FloorSpawn(Floor):
    flags = ["-s"]


class FloorFat(Floor):
    binary, flags = "floor-fat", ["-a", "512"]


class FloorFatSpawn(Floor):
    binary, flags = "floor-fat", ["-s", "-a", "512"]


VARIANTS = {
    "floor, posix_spawn": FloorSpawn,
    "floor-fat, fork": FloorFat,
    "floor-fat, posix_spawn": FloorFatSpawn,
}


def service_argv(tools, kind):
    if kind in ("echo", "ext-echo"):
        return [tools["hello"], "echo"]
    if kind in ("chargen", "ext-chargen"):
        return [tools["hello"], "chargen"]
    return [tools["hello"]]


PEERS = {
    "inetd (ours)": Ours,
    "floor": Floor,
    "openbsd-inetd": OpenBSDInetd,
    "xinetd": Xinetd,
    "tcpserver": Tcpserver,
    "systemd-socket-activate": SocketActivate,
}
OTHER = "inetd (--also-inetd)"
INTERNAL = ("inetd (ours)", OTHER, "openbsd-inetd", "xinetd")
ALL_KINDS = dict(PEERS, **VARIANTS)
ALL_KINDS[OTHER] = OursOther

# ----------------------------------------------------------------------------
# Workloads


def loadgen(tools, args, timeout):
    argv = [tools["loadgen"]] + [str(a) for a in args]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{argv}: exit {r.returncode}: {r.stderr.strip()}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def spawn_run(d, tools, conc, n, t, warm):
    d.check_alive()
    pids = d.daemon_pids()
    before = cpu_seconds(pids)
    res = loadgen(tools, ["spawn", "-p", d.port("spawn"), "-c", conc, "-n", n, "-t", t,
                          "-w", warm], timeout=t + 30)
    time.sleep(0.25)  # the daemon reaps its last children
    after = cpu_seconds(pids)
    if sorted(d.daemon_pids()) != sorted(pids):  # a process restarted: its CPU is lost
        raise RuntimeError(f"daemon processes changed during the run: {pids} -> {d.daemon_pids()}")
    total = res["total"]
    if res["count"] == 0:
        raise RuntimeError(f"no connection completed after the warm-up in {t} s "
                           f"({total} in all)")
    res["cpu_ms_per_1k"] = (after[0] - before[0]) * 1000.0 / max(total, 1) * 1000
    res["runq_ms_per_1k"] = (after[1] - before[1]) * 1000.0 / max(total, 1) * 1000
    if res["errors"]:
        log(f"  {d.name}: {res['errors']} failed connections at concurrency {conc}")
    return res


def echo_run(d, tools, n, t):
    d.check_alive()
    kind = "echo" if d.internal else "ext-echo"
    return loadgen(tools, ["echo", "-p", d.port(kind), "-c", 1, "-n", n, "-t", t, "-s", 64,
                           "-w", min(1000, n // 10)], timeout=t + 30)


def chargen_run(d, tools, t):
    d.check_alive()
    kind = "chargen" if d.internal else "ext-chargen"
    return loadgen(tools, ["chargen", "-p", d.port(kind), "-t", t], timeout=t + 30)


def idle_memory(cls, name, work, tools, ports, nservices=10):
    """A fresh daemon with 10 spawn services, idle: RSS and PSS of its own
    processes (one per service for the single-service peers)."""
    d = cls(name, work, tools, [("spawn", ports.take()) for _ in range(nservices)])
    try:
        d.start()
        d.ready()
        time.sleep(0.5)
        pids = d.daemon_pids()
        rss, pss = memory_kib(pids)
        return {"rss_kib": rss, "pss_kib": pss, "processes": len(pids)}
    finally:
        d.stop()


def hold_run(d, tools, nconn, t):
    """nconn concurrent echo connections: all open, all answer; memory of the
    daemon (its whole process tree: peers fork per echo connection) per
    connection, and the kernel's TCP memory."""
    d.check_alive()
    kind = "echo" if d.internal else "ext-echo"
    root = d.proc_for(kind).pid
    tree = lambda: [root] + descendants(root)  # noqa: E731
    rss0, pss0 = memory_kib(tree())
    tcp0 = tcp_mem_kib()
    argv = [tools["loadgen"], "hold", "-p", str(d.port(kind)), "-c", str(nconn), "-t", str(t),
            "-s", "64"]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    res = {"opened": 0, "answered": 0}
    try:
        line = p.stdout.readline()
        if line.startswith("READY"):
            time.sleep(0.5)
            t_m = time.monotonic()
            procs = tree()
            rss1, pss1 = memory_kib(procs)
            tcp1 = tcp_mem_kib()
            ready = int(line.split()[1])
            res.update(rss_delta_kib=rss1 - rss0, pss_delta_kib=pss1 - pss0,
                       tcp_delta_kib=tcp1 - tcp0, processes=len(procs), ready=ready,
                       measure_s=round(time.monotonic() - t_m, 2))
            p.stdin.write("go\n")
            p.stdin.flush()
        out, err = p.communicate(timeout=t * 3 + 30)
        res.update(json.loads(out.strip().splitlines()[-1]))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    n = max(res.get("ready", 0), 1)
    for k in ("rss", "pss", "tcp"):
        if f"{k}_delta_kib" in res:
            res[f"{k}_per_conn_kib"] = res[f"{k}_delta_kib"] / n
    time.sleep(1.0)  # the peers' echo children exit
    return res


# ----------------------------------------------------------------------------
# Statistics and the report


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    if x is None:
        return "-"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def cell(xs, digits=0):
    if not xs:
        return "-"
    if len(xs) == 1:
        return fmt(xs[0], digits)
    return f"{fmt(med(xs), digits)} ({fmt(min(xs), digits)}–{fmt(max(xs), digits)})"


def ratio(xs, fs, invert=False):
    """Median over rounds of the ratio to the floor in the same round."""
    rs = []
    for x, f in zip(xs, fs):
        if x is None or f is None or x == 0 or f == 0:
            continue
        rs.append(f / x if invert else x / f)
    return f"{med(rs):.2f}" if rs else "-"


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs, {model}, Linux {platform.release()}"


def git_rev():
    r = run_quiet(["git", "-C", REPO, "describe", "--always", "--dirty"])
    return r.stdout.strip() if r.returncode == 0 else "?"


# RESULTS.md holds sections other scripts own (flood.py's), each between
# "<!-- NAME:begin -->" and "<!-- NAME:end -->": each script rewrites its
# own and keeps the others.
SECTIONS = ("flood",)


def section_of(text, name):
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        return None
    return text[i:j + len(end)]


def write_section(path, name, body):
    """Puts `body` between the markers of section `name` of `path`,
    replacing the section, or appending it; the rest is kept."""
    block = f"<!-- {name}:begin -->\n{body.rstrip()}\n<!-- {name}:end -->"
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    old = section_of(text, name)
    if old is not None:
        text = text.replace(old, block)
    else:
        text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def write_keeping_sections(path, text):
    """Writes run.py's report to `path`, keeping the other scripts'
    sections that were in it."""
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    kept = [b for b in (section_of(old, n) for n in SECTIONS) if b]
    with open(path, "w") as f:
        f.write(text.rstrip("\n") + "\n" + "".join("\n" + b + "\n" for b in kept))


def report(R, meta):
    names = meta["peers"]
    fl = R["floor"]
    L = []
    L.append("# Benchmark results")
    L.append("")
    L.append(f"- date: {meta['date']}")
    L.append(f"- machine: {meta['machine']}")
    L.append(f"- load average before / after: {meta['load0']} / {meta['load1']}; other work's "
             f"CPU use before each round: "
             + ", ".join(f"{b * 100:.0f}%" for b in meta["busy"]))
    if meta["busy"] and med(meta["busy"]) > 0.5:
        L.append("- **warning: other work kept this machine busy during the run** (see above): "
                 "absolute figures are low and spreads wide; the ×floor ratios, from daemons "
                 "interleaved in the same rounds, are the figures to read. Re-run on a quiet "
                 "machine before quoting absolutes.")
    L.append(f"- command: `{meta['command']}`")
    L.append(f"- inetd: `{meta['inetd']}` (tree {meta['rev']}); {meta['versions']}")
    if meta.get("other"):
        L.append(f"- {OTHER}: `{meta['other']}`")
    L.append(f"- service program: tests/bench/hello.c, {meta['hello_kind']}")
    L.append(f"- rounds: {meta['rounds']} ({meta['mode']} mode), daemons interleaved in each "
             f"round; cells are median (min–max) over the rounds; ×floor is the median over "
             f"rounds of the ratio to the floor in the same round; run time {meta['elapsed']}")
    L.append("")
    L.append("## A. nowait stream spawn (hello, one line, exit)")
    L.append("")
    L.append("| daemon | conn/s c=1 | ×floor | p50 µs | p99 µs | conn/s c=32 | ×floor | p50 µs | "
             "p99 µs | daemon CPU ms/1k conn c=32 | ×floor | CPU ms/1k c=1 |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in names:
        a1, a32 = R[n]["a1"], R[n]["a32"]
        g = lambda rs, k: [r[k] if r else None for r in rs]  # noqa: E731
        f1, f32 = fl["a1"], fl["a32"]
        L.append("| " + " | ".join([
            n,
            cell([x for x in g(a1, "rate") if x is not None]), ratio(g(a1, "rate"), g(f1, "rate")),
            cell([x for x in g(a1, "p50_us") if x is not None]),
            cell([x for x in g(a1, "p99_us") if x is not None]),
            cell([x for x in g(a32, "rate") if x is not None]),
            ratio(g(a32, "rate"), g(f32, "rate")),
            cell([x for x in g(a32, "p50_us") if x is not None]),
            cell([x for x in g(a32, "p99_us") if x is not None]),
            cell([x for x in g(a32, "cpu_ms_per_1k") if x is not None], 1),
            ratio(g(a32, "cpu_ms_per_1k"), g(f32, "cpu_ms_per_1k")),
            cell([x for x in g(a1, "cpu_ms_per_1k") if x is not None], 1),
        ]) + " |")
    L.append("")
    L.append("## B. echo, 64-byte round trips on one connection; 10,000 held connections")
    L.append("")
    L.append("| daemon | echo | p50 µs | ×floor | p99 µs | ×floor | round trips/s | held: answering "
             "| daemon memory per held conn (PSS growth / conn) | processes while held |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for n in names:
        if not R[n]["b"]:
            continue
        b, fb = R[n]["b"], fl["b"]
        g = lambda rs, k: [r[k] if r else None for r in rs]  # noqa: E731
        h = R["hold"].get(n)
        if h:
            held = f"{h.get('answered', 0):,} / {h.get('held', meta['hold_n']):,}"
            per = f"{h['pss_per_conn_kib']:.1f} KiB" if "pss_per_conn_kib" in h else "-"
            procs = f"{h.get('processes', '-'):,}" if "processes" in h else "-"
        else:
            held, per, procs = "not run", "-", "-"
        L.append("| " + " | ".join([
            n, "internal" if n in INTERNAL else "external (hello echo)",
            cell([x for x in g(b, "p50_us") if x is not None], 1),
            ratio(g(b, "p50_us"), g(fb, "p50_us")),
            cell([x for x in g(b, "p99_us") if x is not None], 1),
            ratio(g(b, "p99_us"), g(fb, "p99_us")),
            cell([x for x in g(b, "rate") if x is not None]), held, per, procs]) + " |")
    if R["hold"]:
        tcp = [h["tcp_per_conn_kib"] for h in R["hold"].values() if h and "tcp_per_conn_kib" in h]
        if tcp:
            L.append("")
            L.append(f"Kernel TCP buffer memory while held (both ends, /proc/net/sockstat): "
                     f"{med(tcp):.1f} KiB per connection (idle connections hold no buffers; "
                     f"socket structures are not counted there).")
    L.append("")
    L.append("## C. chargen to one reader")
    L.append("")
    L.append("| daemon | chargen | MB/s | ×floor |")
    L.append("|---|---|---|---|")
    for n in names:
        if not R[n]["c"]:
            continue
        g = lambda rs, k: [r[k] if r else None for r in rs]  # noqa: E731
        L.append("| " + " | ".join([
            n, "internal" if n in INTERNAL else "external (hello chargen, 64 KiB writes)",
            cell([x for x in g(R[n]["c"], "mb_s") if x is not None]),
            ratio(g(R[n]["c"], "mb_s"), g(fl["c"], "mb_s"))]) + " |")
    L.append("")
    L.append("## D. idle memory with 10 services (all the daemon's processes; "
             "each daemon alone, before the others start)")
    L.append("")
    L.append("| daemon | processes | RSS KiB | PSS KiB | PSS ×floor |")
    L.append("|---|---|---|---|---|")
    for n in names:
        d = R[n]["d"]
        if not d:
            continue
        g = lambda rs, k: [r[k] if r else None for r in rs]  # noqa: E731
        procs = sorted({r["processes"] for r in d if r})
        L.append("| " + " | ".join([
            n, "/".join(str(p) for p in procs) or "-",
            cell([x for x in g(d, "rss_kib") if x is not None]),
            cell([x for x in g(d, "pss_kib") if x is not None]),
            ratio(g(d, "pss_kib"), g(fl["d"], "pss_kib"))]) + " |")
    L.append("")
    L.append("## Targets (issue 10), ours, medians of this run")
    L.append("")
    L.extend(targets(R, meta))
    if meta["problems"]:
        L.append("")
        L.append("## Problems during the run")
        L.append("")
        L.extend(f"- {p}" for p in meta["problems"])
    L.append("")
    return "\n".join(L)


def targets(R, meta):
    ours, fl = R["inetd (ours)"], R["floor"]
    g = lambda rs, k: [r[k] for r in rs if r]  # noqa: E731
    rows = []

    def row(what, ok, detail):
        mark = "-" if ok is None else ("met" if ok else "**missed**")
        rows.append(f"- {what}: {mark} ({detail})")

    rs = [x / f for x, f in zip([r["rate"] if r else None for r in ours["a32"]],
                                [r["rate"] if r else None for r in fl["a32"]]) if x and f]
    r32 = med(rs)
    peers = [n for n in meta["peers"]
             if n not in ("inetd (ours)", "floor", OTHER) and n not in meta["variants"]]
    best = max((med(g(R[n]["a32"], "rate")) or 0, n) for n in peers) if peers else None
    o32 = med(g(ours["a32"], "rate"))
    row("A: spawn rate at c=32 ≥ 1.0 × floor", None if r32 is None else r32 >= 1.0,
        f"{r32:.2f} × floor" if r32 else "-")
    if best:
        row("A: spawn rate at c=32 above every peer", None if o32 is None else o32 > best[0],
            f"{fmt(o32)}/s vs best peer {best[1]} {fmt(best[0])}/s")
    cs = [x / f for x, f in zip([r["cpu_ms_per_1k"] if r else None for r in ours["a32"]],
                                [r["cpu_ms_per_1k"] if r else None for r in fl["a32"]]) if x and f]
    c = med(cs)
    row("A: daemon CPU per 1,000 connections ≤ 1.2 × floor", None if c is None else c <= 1.2,
        f"{c:.2f} × floor" if c else "-")
    if "openbsd-inetd" in R and R["openbsd-inetd"]["b"]:
        ob = R["openbsd-inetd"]["b"]
        for k in ("p50_us", "p99_us"):
            o, p = med(g(ours["b"], k)), med(g(ob, k))
            row(f"B: echo {k[:3]} ≤ openbsd-inetd's", None if o is None or p is None else o <= p,
                f"{fmt(o, 1)} µs vs {fmt(p, 1)} µs")
    h = R["hold"].get("inetd (ours)")
    if h:
        row(f"B: {meta['hold_n']:,} concurrent connections answering",
            h.get("answered", 0) >= meta["hold_n"],
            f"{h.get('answered', 0):,} answered, "
            + (f"{h['pss_per_conn_kib']:.1f} KiB daemon PSS per connection"
               if "pss_per_conn_kib" in h else "memory not measured"))
    cr = [x / f for x, f in zip([r["mb_s"] if r else None for r in ours["c"]],
                                [r["mb_s"] if r else None for r in fl["c"]]) if x and f]
    row("C: internal chargen ≥ 0.5 × floor's external chargen",
        None if not cr else med(cr) >= 0.5, f"{med(cr):.2f} × floor" if cr else "-")
    if "openbsd-inetd" in R:
        o, p = med(g(ours["d"], "pss_kib")), med(g(R["openbsd-inetd"]["d"], "pss_kib"))
        row("D: idle PSS ≤ openbsd-inetd's", None if o is None or p is None else o <= p,
            f"{fmt(o)} KiB vs {fmt(p)} KiB")
    return rows


# ----------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inetd", default=os.path.join(REPO, "build-bench", "inetd"),
                    help="our inetd binary (inetd-listener beside it); default build-bench/inetd")
    ap.add_argument("--user", default="_inetd", help="the listener's user (-u)")
    ap.add_argument("--rounds", type=int, help="rounds (default 5, --quick 2)")
    ap.add_argument("--quick", action="store_true", help="about a minute and a half: 2 short "
                    "rounds, idle memory once, 10,000 held connections for ours only")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--peers", help="comma-separated subset of: " + ", ".join(PEERS))
    ap.add_argument("--no-install", action="store_true", help="use only peers already present")
    ap.add_argument("--hold", type=int, default=10000, help="connections ours holds (B)")
    ap.add_argument("--hold-peers", type=int, default=1000,
                    help="connections the floor and the inetd peers hold (B; they fork a "
                    "process per connection); full mode only, 0: none")
    ap.add_argument("--base-port", type=int, default=21000)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--variants", action="store_true",
                    help="add floor spawn-strategy variants to workload A (fork vs posix_spawn, "
                    "small vs a C++ daemon's mappings)")
    ap.add_argument("--quiet-wait", type=float,
                    help="before each round wait up to this many seconds for the machine to "
                    "be idle (other CPU use < 25%%); default 15, --quick 0")
    ap.add_argument("--also-inetd", metavar="PATH",
                    help="another build of ours, measured beside it in every workload")
    ap.add_argument("--report", metavar="JSON",
                    help="only rewrite --out from a RESULTS.json of an earlier run")
    ap.add_argument("--workdir", default="/var/tmp", help="where the temporary directory goes")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            saved = json.load(f)
        text = report(saved["results"], saved["meta"])
        write_keeping_sections(args.out, text)
        print(text)
        return
    if os.geteuid() != 0:
        sys.exit("run.py: run as root (the daemons bind and spawn as root)")
    if not os.access(args.inetd, os.X_OK):
        sys.exit(f"run.py: {args.inetd}: not found; build it: meson setup build-bench "
                 f"--buildtype=release && ninja -C build-bench")
    args.inetd = os.path.abspath(args.inetd)
    rounds = args.rounds or (2 if args.quick else 5)
    quiet_wait = args.quiet_wait if args.quiet_wait is not None else (0 if args.quick else 15)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    become_subreaper()
    # 10,000 held connections: fds on both ends (loadgen and the daemons
    # inherit this limit; root may raise the hard limit).
    want = max(65536, args.hold * 2 + 1024)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    t_start = time.monotonic()
    with open("/proc/loadavg") as f:
        load0 = " ".join(f.read().split()[:3])
    found = install_peers(args.no_install)
    work = tempfile.mkdtemp(prefix="inetd-bench-", dir=args.workdir)
    problems = []
    busy = []  # other CPU use before each round, fraction of the machine
    try:
        tools = build_tools(work)
        tools.update(found)
        tools["inetd"] = args.inetd
        tools["user"] = args.user
        names = ["inetd (ours)", "floor"] + [n for n in PEERS if n in found]
        if args.also_inetd:
            tools["inetd-other"] = os.path.abspath(args.also_inetd)
            names.insert(1, OTHER)
        missing = [n for n in PEERS if n not in names]
        for n in missing:
            problems.append(f"{n}: not available, left out")
        if args.peers:
            keep = set(x.strip() for x in args.peers.split(","))
            names = [n for n in names if n in keep or n in ("inetd (ours)", "floor", OTHER)]
        variants = []
        if args.variants:
            variants = [n for n in VARIANTS if "fat" not in n or "floor-fat" in tools]
        ports = Ports(args.base_port)
        daemons = {}
        for n in names + variants:
            services = [("spawn", ports.take())]
            if n in INTERNAL:
                services += [("echo", ports.take()), ("chargen", ports.take())]
            elif n == "floor":
                services += [("ext-echo", ports.take()), ("ext-chargen", ports.take())]
            daemons[n] = ALL_KINDS[n](n, work, tools, services)
        R = {n: {"a1": [], "a32": [], "b": [], "c": [], "d": []} for n in names + variants}
        R["hold"] = {}
        # D first, each daemon alone on the machine: a second instance of
        # the same programs (the workload daemons below) would share its
        # pages and halve its PSS. Interleaved rounds (once with --quick).
        for rnd in range(1 if args.quick else min(rounds, 3)):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for n in order:
                try:
                    R[n]["d"].append(idle_memory(ALL_KINDS[n], n + "-idle", work, tools, ports))
                except Exception as e:  # one failure does not end the run
                    problems.append(f"D memory, {n}: {e}")
                    R[n]["d"].append(None)
        log("D idle memory: " + ", ".join(
            f"{n} {R[n]['d'][-1]['pss_kib']:,} KiB PSS" for n in names if R[n]["d"][-1]))

        log(f"starting {', '.join(names + variants)} in {work}")
        for d in daemons.values():
            d.start()
        for d in daemons.values():
            d.ready()

        if args.quick:
            n1, t1, w1, n32, t32, w32, ne, te, tc = 1500, 1.0, 50, 8000, 1.5, 200, 15000, 1.0, 1.0
        else:
            n1, t1, w1, n32, t32, w32, ne, te, tc = 3000, 2.0, 100, 20000, 3.0, 300, 30000, 1.5, 2.0
        for rnd in range(rounds):
            busy.append(wait_quiet(quiet_wait))
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            a_order = order + variants
            log(f"round {rnd + 1}/{rounds}: {' / '.join(a_order)} "
                f"(other CPU use {busy[-1] * 100:.0f}%)")

            def attempt(n, what, fn):
                try:
                    return fn()
                except Exception as e:  # one failure does not end the run
                    problems.append(f"round {rnd + 1}, {n}, {what}: {e}")
                    log(f"  {n} {what}: {e}")
                    return None

            for n in a_order:
                d = daemons[n]
                R[n]["a1"].append(attempt(n, "A c=1", lambda: spawn_run(d, tools, 1, n1, t1, w1)))
            for n in a_order:
                d = daemons[n]
                R[n]["a32"].append(attempt(n, "A c=32",
                                           lambda: spawn_run(d, tools, 32, n32, t32, w32)))
            for n in order:
                d = daemons[n]
                if d.internal or n == "floor":
                    R[n]["b"].append(attempt(n, "B echo", lambda: echo_run(d, tools, ne, te)))
            for n in order:
                d = daemons[n]
                if d.internal or n == "floor":
                    R[n]["c"].append(attempt(n, "C chargen", lambda: chargen_run(d, tools, tc)))
            summary = []
            for n in names + variants:
                a = R[n]["a32"][-1]
                summary.append(f"{n} {a['rate']:.0f}/s" if a else f"{n} -")
            log("  A c=32: " + ", ".join(summary))

        # B, held connections: once. Ours holds --hold (10,000); in full
        # mode the floor and the inetd peers, which fork a process per echo
        # connection, hold --hold-peers (1,000) for their memory figure.
        holds = [("inetd (ours)", args.hold)]
        if not args.quick and args.hold_peers > 0:
            holds += [(n, args.hold_peers) for n in names
                      if (n in INTERNAL or n == "floor") and n not in ("inetd (ours)", OTHER)]
        for n, count in holds:
            log(f"holding {count:,} connections on {n}")
            try:
                R["hold"][n] = hold_run(daemons[n], tools, count, 30)
                R["hold"][n]["held"] = count
            except Exception as e:
                problems.append(f"{n}, B hold: {e}")
                log(f"  {n} hold: {e}")

        for d in daemons.values():
            d.stop()
        with open("/proc/loadavg") as f:
            load1 = " ".join(f.read().split()[:3])
        versions = []
        for pkg, n in (("openbsd-inetd", "openbsd-inetd"), ("ucspi-tcp", "tcpserver"),
                       ("systemd", "systemd-socket-activate")):
            if n in names:
                versions.append(f"{n} {deb_version(pkg)}")
        if "xinetd" in names:
            versions.append(f"xinetd {xinetd_version(found['xinetd'])}")
        el = time.monotonic() - t_start
        meta = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    machine=machine(), load0=load0, load1=load1, inetd=args.inetd,
                    rev=git_rev(), versions="; ".join(versions),
                    hello_kind=tools["hello_kind"], rounds=rounds,
                    mode="quick" if args.quick else "full", elapsed=f"{el / 60:.1f} min",
                    peers=names + variants, problems=problems, hold_n=args.hold,
                    busy=busy, variants=variants, other=args.also_inetd,
                    command="python3 tests/bench/run.py " + " ".join(sys.argv[1:]))
        text = report(R, meta)
        write_keeping_sections(args.out, text)
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump({"meta": meta, "results": R}, f, indent=1)
        print(text)
    finally:
        stop_all()
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
