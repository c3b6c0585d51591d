"""The listener's sandbox, seen from /proc, and its restart."""

import os
import signal
import socket
import unittest

import harness
from harness import InetdTestCase, tcp_exchange


def sanitized(pid):
    """True if the process runs with a sanitizer runtime mapped."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            maps = f.read()
    except OSError:
        return False
    return any(lib in maps for lib in ("libasan", "libubsan", "libtsan"))


class SandboxTest(InetdTestCase):

    def start_two_services(self):
        p1, p2 = self.d.port(), self.d.port()
        self.d.start(f"127.0.0.1:{p1} stream tcp nowait nobody /bin/echo echo one\n"
                     f"127.0.0.1:{p2} dgram udp wait nobody /bin/true true\n")
        return p1, p2

    def assert_unprivileged(self, pid, what):
        """nobody in every uid and gid slot, no supplementary groups (root's
        group 0 must not survive), no capability in any set, no_new_privs,
        a seccomp filter."""
        uid, gid, _ = harness.user_ids("nobody")
        st = harness.proc_status(pid)
        self.assertIsNotNone(st, f"{what} vanished")
        self.assertEqual(st["Uid"].split(), [str(uid)] * 4)
        self.assertEqual(st["Gid"].split(), [str(gid)] * 4)
        self.assertEqual(st.get("Groups", "").split(), [])
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            self.assertEqual(int(st[cap], 16), 0, f"{what} {cap} = {st[cap]}")
        self.assertEqual(st["NoNewPrivs"], "1")
        self.assertEqual(st["Seccomp"], "2", f"{what} not in seccomp filter mode")
        return st

    def assert_sandboxed(self, pid):
        self.assert_unprivileged(pid, "listener")
        # Every fd is a socket, but for one epoll instance and one timerfd.
        fd_dir = f"/proc/{pid}/fd"
        targets = {}
        for fd in os.listdir(fd_dir):
            try:
                targets[int(fd)] = os.readlink(os.path.join(fd_dir, fd))
            except FileNotFoundError:
                pass
        loop_fds = ("anon_inode:[eventpoll]", "anon_inode:[timerfd]")
        others = {fd: t for fd, t in targets.items()
                  if not t.startswith("socket:") and t not in loop_fds}
        # Sanitizer builds keep stderr for their reports (listener_proc.cc).
        if sanitized(pid):
            others.pop(2, None)
        self.assertEqual(others, {}, f"listener holds non-socket fds: {targets}")
        for kind in loop_fds:
            self.assertEqual(sum(t == kind for t in targets.values()), 1, targets)
        # 2 channels to the monitor + 3 service sockets (two here, the probe).
        sockets = [t for t in targets.values() if t.startswith("socket:")]
        self.assertGreaterEqual(len(sockets), 5, targets)
        # No environment, root directory as cwd.
        with open(f"/proc/{pid}/environ", "rb") as f:
            self.assertEqual(f.read(), b"")
        self.assertEqual(os.readlink(f"/proc/{pid}/cwd"), "/")

    def test_listener_sandbox(self):
        self.start_two_services()
        pid = self.d.listener_pid()
        self.assertIsNotNone(pid, self.logmsg("no inetd-listener child of the monitor"))
        self.assert_sandboxed(pid)
        # The monitor is still root (it spawns services as any user).
        mon = harness.proc_status(self.d.pid)
        self.assertEqual(mon["Uid"].split()[1], "0")

    def test_resolver_sandbox(self):
        # -w: the listener forks its name-lookup helper before its filter.
        self.d.use_hosts("", "")
        self.d.start(f"127.0.0.1:{self.d.port()} stream tcp nowait nobody /bin/echo echo one\n",
                     args=("-w",))
        lst = self.d.listener_pid()
        pid = harness.wait_until(self.d.resolver_pid, timeout=5)
        self.assertIsNotNone(pid, self.logmsg("no inetd-resolver child of the listener"))
        st = self.assert_unprivileged(pid, "resolver")
        self.assertEqual(int(st["PPid"]), lst)
        # Its channel, /dev/null on 0-2 (stderr kept in sanitizer builds) and
        # the eventfd its worker threads wake it with.
        fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        sockets = [fd for fd, t in fds.items() if t.startswith("socket:")]
        self.assertEqual(len(sockets), 1, fds)
        for fd, t in fds.items():
            if fd not in sockets and not (fd == 2 and sanitized(pid)):
                self.assertIn(t, ("/dev/null", "anon_inode:[eventfd]"), fds)
        with open(f"/proc/{pid}/environ", "rb") as f:
            self.assertEqual(f.read(), b"")
        # It goes with the listener.
        os.kill(lst, signal.SIGKILL)
        self.assertTrue(harness.wait_until(lambda: not harness.alive(pid), timeout=5))

    def test_no_resolver_without_wrapping(self):
        self.start_two_services()
        self.assertIsNotNone(self.d.listener_pid())
        self.assertIsNone(self.d.resolver_pid())

    def test_listener_restart_while_wait_child_runs(self):
        if not os.access("/usr/bin/python3", os.X_OK):
            self.skipTest("/usr/bin/python3 is missing")
        port = self.d.port()
        script = self.d.write("slow_udp.py", (
            "import socket, time\n"
            "time.sleep(0.8)\n"
            "s = socket.socket(fileno=0)\n"
            "data, peer = s.recvfrom(2048)\n"
            "s.sendto(b'slow:' + data, peer)\n"))
        self.d.start(f"127.0.0.1:{port} dgram udp wait nobody /usr/bin/python3 python3 {script}\n")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            s.send(b"one")
            self.assertTrue(harness.wait_until(lambda: self.d.service_pids("python3"), timeout=3))
            old = self.d.listener_pid()
            os.kill(old, signal.SIGKILL)
            self.assertEqual(s.recv(100), b"slow:one", self.logmsg())
            self.assertTrue(harness.wait_until(
                lambda: (lambda p: p and p != old)(self.d.listener_pid()), timeout=5))
            s.send(b"two")
            self.assertEqual(s.recv(100), b"slow:two", self.logmsg("no reply after the restart"))
        # The new listener learnt from the table that the child was running:
        # it did not ask for a second one (refused: max-child 1) meanwhile.
        self.assertNotRegex(self.d.log(), r"refused|violation", self.d.log())

    def test_listener_restart_keeps_sockets(self):
        p1, p2 = self.start_two_services()
        old = self.d.listener_pid()
        self.assertIsNotNone(old)
        os.kill(old, signal.SIGKILL)
        new = harness.wait_until(lambda: (lambda p: p if p and p != old else None)(self.d.listener_pid()),
                                 timeout=5)
        self.assertTrue(new, self.logmsg("no new listener within 5 s"))
        self.assertIsNotNone(self.d.wait_log(rf"listener \[{old}\] killed by signal 9"),
                             self.logmsg("the monitor did not log the death"))
        # The listening sockets survived: the same port answers, no rebind.
        data = tcp_exchange("127.0.0.1", p1, timeout=5)
        self.assertEqual(data, b"one\n", self.logmsg("service after listener restart"))
        self.assert_sandboxed(new)
        # And again: a second death is restarted too (after a short backoff).
        os.kill(new, signal.SIGKILL)
        third = harness.wait_until(
            lambda: (lambda p: p if p and p not in (old, new) else None)(self.d.listener_pid()),
            timeout=5)
        self.assertTrue(third, self.logmsg("no third listener"))
        self.assertEqual(tcp_exchange("127.0.0.1", p1, timeout=5), b"one\n")
        self.assertIsNone(self.d.proc.poll())


if __name__ == "__main__":
    unittest.main()
