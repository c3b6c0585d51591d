"""Integration-test harness: runs the real inetd on loopback.

Each Inetd object owns one fresh temporary directory, one configuration, one
daemon and everything the daemon started. cleanup() (registered with
addCleanup by InetdTestCase) always stops the daemon (SIGTERM, then SIGKILL
after a bound), kills every process the daemon left behind, and removes the
directory. Every wait is bounded in time.

Services run in their own sessions (the spawner calls setsid), so they are
not in the daemon's process group. To find them all, this process makes
itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER): whatever the daemon
leaves behind when it exits is re-parented to us rather than to init, and we
find it by its parent pid. Processes whose command line names the temporary
directory are killed too, as a second net.

The inetd binary comes from the INETD environment variable (set by meson).
"""

import ctypes
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

# -- process helpers ----------------------------------------------------------

PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


SUBREAPER = _become_subreaper()


def proc_status(pid):
    """/proc/PID/status as a dict of field -> text, or None if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            out = {}
            for line in f:
                key, _, value = line.partition(":")
                out[key] = value.strip()
            return out
    except (FileNotFoundError, ProcessLookupError):
        return None


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def parent_map():
    """pid -> ppid for every live process."""
    out = {}
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # comm may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        out[pid] = int(fields[1])
    return out


def descendants(root):
    """Every live descendant of `root` (not root itself)."""
    parents = parent_map()
    children = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def alive(pid):
    """True if the process exists and is not a zombie."""
    st = proc_status(pid)
    return st is not None and not st.get("State", "").startswith(("Z", "X"))


def wait_until(pred, timeout=5.0, interval=0.05):
    """Polls pred() until it returns a true value or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def reap(pid):
    """Reaps `pid` if it is our (possibly adopted) child; never blocks."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def kill_and_reap(pids, timeout=3.0):
    """SIGKILLs `pids` (and the process groups they lead: services call
    setsid) and reaps those that are our children. Bounded."""
    me, mygroup = os.getpid(), os.getpgrp()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            if pid != mygroup and os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            reap(pid)
            st = proc_status(pid)
            if st is None:
                pending.discard(pid)
            elif st.get("State", "").startswith(("Z", "X")) and int(st.get("PPid", "0")) != me:
                pending.discard(pid)  # someone else's zombie: its parent reaps it
        if pending:
            time.sleep(0.02)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


# -- network namespace --------------------------------------------------------

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
_private_net = None


def private_network():
    """Moves this process (and so every daemon and client it starts) into a
    network namespace of its own, with only a loopback interface, once per
    process. The tests then cannot collide with other daemons on the host
    (built-ins need the well-known ports 7, 9, 13, 19 and 37) and can leave
    no port behind. Returns False, and the tests use the host's loopback,
    where namespaces are not allowed or INETD_IT_HOST_NET is set."""
    global _private_net
    if _private_net is not None:
        return _private_net
    _private_net = False
    if os.environ.get("INETD_IT_HOST_NET"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) != 0:
            return False
        import fcntl
        import struct
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            req = struct.pack("16sh", b"lo", 0)
            flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, req + b"\0" * 22)[:18])[1]
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP) + b"\0" * 22)
    except OSError:
        # Half-way: stuck in a namespace without a working loopback.
        raise unittest.SkipTest("could not bring up loopback in a private network namespace")
    _private_net = True
    return True


# -- users --------------------------------------------------------------------

def user_ids(name):
    """(uid, gid, sorted supplementary group list as initgroups would set)."""
    pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid, sorted(set(os.getgrouplist(name, pw.pw_gid)))


def group_id(name):
    return grp.getgrnam(name).gr_gid


# -- ports --------------------------------------------------------------------

def _can_bind(family, kind, host, port):
    s = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            # As inetd does: connections in TIME_WAIT (left by a server that
            # closed first, like daytime) do not make the port busy, a
            # listener does.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def have_ipv6_loopback():
    return _can_bind(socket.AF_INET6, socket.SOCK_STREAM, "::1", 0)


def port_free(port, tcp=True, udp=True, v4=True, v6=False):
    for family, host, want in ((socket.AF_INET, "127.0.0.1", v4), (socket.AF_INET6, "::1", v6)):
        if not want:
            continue
        for kind, want_kind in ((socket.SOCK_STREAM, tcp), (socket.SOCK_DGRAM, udp)):
            if want_kind and not _can_bind(family, kind, host, port):
                return False
    return True


# -- the daemon ---------------------------------------------------------------

READY_TEXT = "inetd-integration-ready"


class Inetd:
    """One daemon in one temporary directory."""

    START_TIMEOUT = 8.0
    STOP_TIMEOUT = 5.0

    def __init__(self):
        self.binary = os.environ.get("INETD", "")
        self.tmp = tempfile.mkdtemp(prefix="inetd-it-")
        # Services run as nobody must reach the scripts written here.
        os.chmod(self.tmp, 0o755)
        self.conf_path = os.path.join(self.tmp, "inetd.conf")
        self.pidfile = os.path.join(self.tmp, "inetd.pid")
        self.log_path = os.path.join(self.tmp, "inetd.log")
        self.proc = None
        self.returncode = None
        self.ready_port = None
        self._ports = set()
        self._log_file = None
        self.extra_pids = []  # processes a test wants killed at cleanup
        self.hosts = None     # (allow, deny) paths once use_hosts was called
        self._made_targets = []

    # -- files --

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        data = text.encode() if isinstance(text, str) else text
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    def script(self, name, text):
        return self.write(name, text, 0o755)

    def mkdir(self, name, mode=0o755):
        p = self.path(name)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        return p

    # -- ports --

    def port(self, v6=False):
        """A port free for TCP and UDP on 127.0.0.1 (and ::1 if v6), and not
        handed out before by this object. Bounded retries."""
        for _ in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            finally:
                s.close()
            if port in self._ports:
                continue
            if port_free(port, v6=v6):
                self._ports.add(port)
                return port
        raise RuntimeError("no free port found")

    # -- running --

    HOSTS_TARGETS = ("/etc/hosts.allow", "/etc/hosts.deny")

    def use_hosts(self, allow="", deny=""):
        """hosts_access files for this daemon, bind-mounted over
        /etc/hosts.allow and /etc/hosts.deny in a mount namespace of the
        daemon's own, so the host's files are never read or changed. Edit
        them with write_hosts (in place: the mount follows the inode). A
        missing target is created empty (an empty file is a missing one to
        hosts_access) and removed at cleanup."""
        for t in self.HOSTS_TARGETS:
            if not os.path.exists(t):
                open(t, "a").close()
                self._made_targets.append(t)
        self.hosts = (self.write("hosts.allow", allow), self.write("hosts.deny", deny))

    def write_hosts(self, allow=None, deny=None):
        for path, text in zip(self.hosts, (allow, deny)):
            if text is not None:
                with open(path, "r+b") as f:
                    f.write(text.encode())
                    f.truncate()

    def command(self, args=(), conf=None, user="nobody", pidfile=True):
        cmd = [self.binary, "-d"]
        if user is not None:
            cmd += ["-u", user]
        if pidfile:
            cmd += ["-p", self.pidfile]
        cmd += list(args)
        cmd.append(conf or self.conf_path)
        return self.with_hosts(cmd)

    def with_hosts(self, cmd):
        """`cmd` run in a mount namespace with the files of use_hosts over
        the real ones (unchanged without use_hosts). unshare and sh exec:
        the command keeps the pid Popen saw."""
        if not self.hosts:
            return cmd
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$1" /etc/hosts.allow && mount --bind "$2" /etc/hosts.deny'
                ' && shift 2 && exec "$@"', "sh", *self.hosts] + list(cmd)

    def start(self, conf_text, args=(), ready=True, user="nobody"):
        """Writes `conf_text` (a readiness probe entry is appended at the end,
        so the line numbers of the given text are kept), starts the daemon and
        waits until the listener serves."""
        if ready:
            self.ready_port = self.port()
            conf_text = (conf_text.rstrip("\n") + "\n\n"
                         f"127.0.0.1:{self.ready_port} stream tcp nowait nobody "
                         f"/bin/echo echo {READY_TEXT}\n")
        self.write("inetd.conf", conf_text)
        if self._log_file:
            self._log_file.close()
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command(args, user=user), stdin=subprocess.DEVNULL,
            stdout=self._log_file, stderr=self._log_file, start_new_session=True)
        if ready:
            self.wait_ready()
        return self.proc

    def run_to_exit(self, argv, timeout=10.0):
        """Runs inetd with `argv` (not counting the binary) expecting it to
        exit by itself; (exit status, combined output). A daemon that keeps
        running is killed at the bound and reported as status None."""
        self.proc = subprocess.Popen([self.binary] + list(argv), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
            return self.proc.returncode, out.decode(errors="replace")
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate(timeout=self.STOP_TIMEOUT)
            return None, out.decode(errors="replace")

    def wait_ready(self, timeout=None):
        """One connection to the probe service: connect (retrying while the
        monitor has not bound yet), then read its line. A connection waits in
        the backlog until the listener accepts, so the read proves the whole
        chain: monitor, listener, spawn."""
        deadline = time.monotonic() + (timeout or self.START_TIMEOUT)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"inetd exited with {self.proc.returncode} before it was ready\n{self.log()}")
            try:
                data = tcp_exchange("127.0.0.1", self.ready_port, b"",
                                    timeout=max(0.1, deadline - time.monotonic()))
            except ConnectionRefusedError:
                time.sleep(0.05)
                continue
            except OSError:
                time.sleep(0.05)
                continue
            if READY_TEXT.encode() in data:
                return
            time.sleep(0.05)
        raise AssertionError(f"inetd not ready after {timeout or self.START_TIMEOUT} s\n{self.log()}")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def kill(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signals the daemon and waits for it; SIGKILL after the bound.
        Returns the exit status (negative: killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout or self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(self.STOP_TIMEOUT)
        self.returncode = self.proc.returncode
        return self.returncode

    def listener_pid(self):
        """The inetd-listener child of the monitor, or None."""
        if self.proc is None:
            return None
        for pid in descendants(self.proc.pid):
            st = proc_status(pid)
            if st and int(st.get("PPid", "0")) == self.proc.pid and \
                    proc_comm(pid) == "inetd-listener" and alive(pid):
                return pid
        return None

    def resolver_pid(self):
        """The listener's name-lookup child (listener/resolver.cc), or None."""
        lst = self.listener_pid()
        for pid in descendants(lst) if lst else ():
            if proc_comm(pid) == "inetd-resolver" and alive(pid):
                return pid
        return None

    def service_pids(self, comm=None):
        """Live descendants of the monitor other than the listener and its
        resolver."""
        if self.proc is None:
            return []
        lst = self.listener_pid()
        out = []
        for pid in descendants(self.proc.pid):
            if pid == lst or not alive(pid) or proc_comm(pid) == "inetd-resolver":
                continue
            if comm is None or proc_comm(pid) == comm:
                out.append(pid)
        return out

    # -- log --

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=5.0):
        """The first match of regex `pattern` in the log, waiting up to
        `timeout`; None if it never shows."""
        rx = re.compile(pattern, re.M)
        return wait_until(lambda: rx.search(self.log()), timeout)

    # -- cleanup --

    def _leftovers(self):
        me = os.getpid()
        out = set()
        parents = parent_map()
        for pid, ppid in parents.items():
            if pid == me:
                continue
            # Orphans the daemon left: re-parented to us (the subreaper).
            if ppid == me and (self.proc is None or pid != self.proc.pid):
                out.add(pid)
                out.update(descendants(pid))
            # Anything that names our directory.
            elif any(self.tmp in a for a in proc_cmdline(pid)):
                out.add(pid)
        if self.proc is not None and self.proc.poll() is None:
            out.update(descendants(self.proc.pid))
        out.update(p for p in self.extra_pids if proc_status(p) is not None)
        return sorted(out)

    def cleanup(self):
        try:
            if self.proc is not None:
                self.stop()
            for _ in range(5):
                left = self._leftovers()
                if not left:
                    break
                kill_and_reap(left)
        finally:
            if self._log_file:
                self._log_file.close()
            for t in self._made_targets:
                if os.path.getsize(t) == 0:
                    os.unlink(t)
            if os.environ.get("INETD_IT_KEEP"):
                sys.stderr.write(f"keeping {self.tmp}\n")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)


# -- network helpers ----------------------------------------------------------

def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def tcp_exchange(host, port, send=b"", timeout=5.0, shut=True, limit=1 << 20):
    """Connects, sends `send`, half-closes (if `shut`), and reads until EOF,
    `limit` bytes or the deadline. Returns the bytes read."""
    deadline = time.monotonic() + timeout
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        if send:
            s.sendall(send)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return read_all(s, deadline, limit)


def read_all(s, deadline, limit=1 << 20, line=False):
    """Reads until EOF, `limit` bytes, the deadline, or (with `line`) the
    end of a line."""
    out = b""
    while len(out) < limit and not (line and out.endswith(b"\n")):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out


def udp_exchange(host, port, send, timeout=3.0):
    """Sends one datagram and returns the first reply (None on timeout)."""
    with socket.socket(_family(host), socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        s.send(send)
        try:
            return s.recv(65536)
        except socket.timeout:
            return None


def connect_refused(host, port, timeout=2.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True


# -- test case base -----------------------------------------------------------

def find_tool(name):
    return shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")


class InetdTestCase(unittest.TestCase):
    """Skips unless root and INETD names an executable; gives each test a
    fresh Inetd in self.d, always cleaned up."""

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        binary = os.environ.get("INETD", "")
        if not binary or not os.access(binary, os.X_OK):
            raise unittest.SkipTest("INETD is not set to the inetd binary (run through meson test)")
        if os.geteuid() != 0:
            raise unittest.SkipTest("integration tests need root (inetd binds ports and switches users)")
        try:
            pwd.getpwnam("nobody")
        except KeyError:
            raise unittest.SkipTest("no user 'nobody' on this host")
        private_network()

    def setUp(self):
        self.d = Inetd()
        self.addCleanup(self.d.cleanup)

    def need_tools(self, *names):
        paths = []
        for n in names:
            p = find_tool(n)
            if p is None:
                self.skipTest(f"{n} is not installed (apt-get install tftpd-hpa tftp-hpa rsync git)")
            paths.append(p)
        return paths

    def logmsg(self, what=""):
        return f"{what}\n--- inetd log ---\n{self.d.log()}"
