"""The limits of inetd(8) with the real daemon: per-IP connections per
minute (-C, max-connections-per-ip-per-minute), per-IP children (-s,
max-child-per-ip), max-child, and -R's looping detection. Exact counts:
connection N is served and N+1 refused, with FreeBSD's log lines.

Clients pick their source address in 127.0.0.0/8 (bind before connect), so
one test plays several hosts.

The comeback after looping: FreeBSD brings a terminated service back after
ten minutes. tests/unit/limits_test.cc drives that with a clock; here the
real daemon is seen coming back after the real ten minutes, when
INETD_IT_SLOW=1 is set (about 11 minutes: run it by hand, meson's timeout is
2 minutes; the daemon has no test knob for it):
    INETD_IT_SLOW=1 INETD=build/inetd python3 tests/integration/run.py test_limits
"""

import os
import re
import socket
import time

import harness
from harness import InetdTestCase

SERVED = b"served"


IPV6_FREEBIND = 78  # linux/in6.h: bind an address of a `local` route


def connect_from(src, port, dst="127.0.0.1", timeout=3.0):
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
    s.bind((src, 0))
    s.connect((dst, port))
    return s


def first_line(s, timeout=3.0):
    """What the service says first: b"" if the connection is closed on us
    without a word (a refusal), None if nothing comes within `timeout`."""
    s.settimeout(timeout)
    data = b""
    try:
        while b"\n" not in data:
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return None if not data else data
    except ConnectionResetError:
        pass
    return data


def ask(src, port, dst="127.0.0.1"):
    """One whole connection from `src`: True if served, False if refused."""
    with connect_from(src, port, dst) as s:
        line = first_line(s)
    if line is None:
        raise AssertionError(f"no answer and no close from {dst}:{port} for {src}")
    return SERVED in line


class LimitsTest(InetdTestCase):

    def echo_service(self, port, wait_field, proto="tcp", host="127.0.0.1"):
        return (f"{host}:{port} stream {proto} {wait_field} nobody "
                f"/bin/echo echo {SERVED.decode()}\n")

    def holding_service(self, port, wait_field):
        """A service that says its line and runs until the client closes."""
        script = self.d.script("hold.sh", "#!/bin/sh\necho served\nexec cat >/dev/null\n")
        return f"127.0.0.1:{port} stream tcp {wait_field} nobody {script} hold.sh\n"

    def count_log(self, pattern, expect=None):
        """Lines matching pattern; with expect, waits (bounded) for that many
        first: refusals are logged by the listener through the monitor."""
        count = lambda: len(re.findall(pattern, self.d.log(), re.M))
        if expect is not None:
            harness.wait_until(lambda: count() >= expect, timeout=3.0)
            time.sleep(0.1)  # and no more than that
        return count()

    def wait_children_gone(self, comm="cat", timeout=5.0):
        ok = harness.wait_until(lambda: not self.d.service_pids(comm), timeout)
        self.assertTrue(ok, self.logmsg(f"{comm} children still running"))
        time.sleep(0.3)  # the monitor reaps and tells the listener

    # -- max-connections-per-ip-per-minute / -C ------------------------------

    def test_per_ip_rate_per_service(self):
        port = self.d.port()
        self.d.start(self.echo_service(port, "nowait/0/3"))
        served = [ask("127.0.0.2", port) for _ in range(4)]
        self.assertEqual(served, [True, True, True, False], self.logmsg("from 127.0.0.2"))
        self.assertIsNotNone(
            self.d.wait_log(rf"\b{port} from 127\.0\.0\.2 exceeded counts/min \(limit 3/min\)"),
            self.logmsg("FreeBSD's counts/min line"))
        # Still refused while the minute runs; another host is counted apart.
        self.assertFalse(ask("127.0.0.2", port))
        self.assertEqual([ask("127.0.0.3", port) for _ in range(4)], [True, True, True, False])
        self.assertEqual(self.count_log(r"exceeded counts/min", 3), 3, self.logmsg())

    def test_per_ip_rate_default_and_override(self):
        limited, unlimited = self.d.port(), self.d.port()
        self.d.start(self.echo_service(limited, "nowait") +
                     self.echo_service(unlimited, "nowait/0/0"), args=["-C", "2"])
        self.assertEqual([ask("127.0.0.2", limited) for _ in range(3)], [True, True, False])
        self.assertIsNotNone(
            self.d.wait_log(rf"\b{limited} from 127\.0\.0\.2 exceeded counts/min \(limit 2/min\)"),
            self.logmsg())
        # An explicit 0 in the entry overrides -C: unlimited.
        self.assertEqual([ask("127.0.0.2", unlimited) for _ in range(5)], [True] * 5)

    def test_per_ip_rate_ipv6_and_v4_mapped(self):
        if not harness.have_ipv6_loopback():
            self.skipTest("no IPv6 loopback")
        v6, dual = self.d.port(v6=True), self.d.port(v6=True)
        self.d.start(self.echo_service(v6, "nowait/0/1", "tcp6", "[::1]") +
                     self.echo_service(dual, "nowait/0/1", "tcp46", "[::]"))
        self.assertEqual([ask("::1", v6, "::1") for _ in range(2)], [True, False])
        self.assertIsNotNone(self.d.wait_log(rf"\b{v6} from ::1 exceeded counts/min"),
                             self.logmsg())
        # A v4 client of a tcp46 socket is counted and logged as IPv4.
        self.assertEqual([ask("127.0.0.5", dual) for _ in range(2)], [True, False])
        self.assertIsNotNone(
            self.d.wait_log(rf"\b{dual} from 127\.0\.0\.5 exceeded counts/min \(limit 1/min\)"),
            self.logmsg("v4-mapped peer logged as IPv4"))

    def test_ipv6_prefix_groups_sources(self):
        # Two addresses of one /64 are one client by default; -P 128 tells
        # them apart. `ip -6 route add local` lets a client bind any address
        # of the prefix (in the test's private network namespace).
        if not harness.have_ipv6_loopback() or not harness.private_network():
            self.skipTest("needs IPv6 loopback in a private network namespace")
        import subprocess
        r = subprocess.run(["ip", "-6", "route", "replace", "local", "fd00:1ee7::/64", "dev", "lo"],
                           capture_output=True)
        if r.returncode != 0:
            self.skipTest(f"ip -6 route: {r.stderr!r}")
        self.addCleanup(subprocess.run, ["ip", "-6", "route", "del", "local", "fd00:1ee7::/64",
                                         "dev", "lo"], capture_output=True)
        for prefix, want in ((None, [True, False]), ("128", [True, True])):
            port = self.d.port(v6=True)
            self.d.stop()
            self.d.start(self.echo_service(port, "nowait/0/1", "tcp6", "[::]"),
                         args=["-P", prefix] if prefix else [])
            got = [ask("fd00:1ee7::1", port, "::1"), ask("fd00:1ee7::2", port, "::1")]
            self.assertEqual(got, want, self.logmsg(f"-P {prefix}"))

    # -- max-child-per-ip / -s -------------------------------------------------

    def test_per_ip_children(self):
        port = self.d.port()
        self.d.start(self.holding_service(port, "nowait/0/0/2"))
        held = [connect_from("127.0.0.2", port) for _ in range(2)]
        try:
            for s in held:
                self.assertEqual(first_line(s), SERVED + b"\n", self.logmsg())
            self.assertFalse(ask("127.0.0.2", port), self.logmsg("third child for 127.0.0.2"))
            self.assertIsNotNone(
                self.d.wait_log(rf"\b{port} from 127\.0\.0\.2 exceeded counts \(limit 2\)"),
                self.logmsg("FreeBSD's counts line"))
            # Another host has its own two.
            other = connect_from("127.0.0.3", port)
            held.append(other)
            self.assertEqual(first_line(other), SERVED + b"\n", self.logmsg())
            # One of 127.0.0.2's children ends: it may have one more.
            held.pop(0).close()
            harness.wait_until(lambda: len(self.d.service_pids("cat")) == 2, 5.0)
            time.sleep(0.3)
            again = connect_from("127.0.0.2", port)
            held.append(again)
            self.assertEqual(first_line(again), SERVED + b"\n", self.logmsg("after an exit"))
        finally:
            for s in held:
                s.close()
        self.wait_children_gone()

    def test_per_ip_children_default(self):
        port = self.d.port()
        self.d.start(self.holding_service(port, "nowait"), args=["-s", "1"])
        with connect_from("127.0.0.2", port) as first:
            self.assertEqual(first_line(first), SERVED + b"\n")
            self.assertFalse(ask("127.0.0.2", port))
            self.assertIsNotNone(
                self.d.wait_log(rf"\b{port} from 127\.0\.0\.2 exceeded counts \(limit 1\)"),
                self.logmsg())
        self.wait_children_gone()
        self.assertTrue(ask("127.0.0.2", port), self.logmsg("after the child ended"))

    # -- combined ----------------------------------------------------------------

    def test_rate_and_children_combined(self):
        """FreeBSD's order: the rate is checked first and counts every
        connection, the ones refused for children too."""
        port = self.d.port()
        self.d.start(self.holding_service(port, "nowait/0/3/1"))
        first = connect_from("127.0.0.2", port)                 # 1: served
        self.assertEqual(first_line(first), SERVED + b"\n", self.logmsg())
        self.assertFalse(ask("127.0.0.2", port))                # 2: one child already
        first.close()
        self.wait_children_gone()
        third = connect_from("127.0.0.2", port)                 # 3: served
        self.assertEqual(first_line(third), SERVED + b"\n", self.logmsg())
        third.close()
        self.wait_children_gone()
        self.assertFalse(ask("127.0.0.2", port))                # 4: over 3/min
        self.assertEqual(self.count_log(rf"\b{port} from 127\.0\.0\.2 exceeded counts \(limit 1\)", 1),
                         1, self.logmsg())
        self.assertEqual(
            self.count_log(rf"\b{port} from 127\.0\.0\.2 exceeded counts/min \(limit 3/min\)", 1),
            1, self.logmsg())

    # -- max-child -----------------------------------------------------------------

    def test_max_child_waits_and_is_logged_once(self):
        port = self.d.port()
        self.d.start(self.holding_service(port, "nowait/1"))
        first = connect_from("127.0.0.2", port)
        self.assertEqual(first_line(first), SERVED + b"\n", self.logmsg())
        # The second waits in the backlog, not refused.
        second = connect_from("127.0.0.3", port)
        third = connect_from("127.0.0.4", port)
        self.assertIsNone(first_line(second, timeout=1.0), self.logmsg("second while full"))
        self.assertIsNotNone(self.d.wait_log(rf"\b{port}/tcp: max-child 1 reached"),
                             self.logmsg())
        first.close()
        self.assertEqual(first_line(second, timeout=5.0), SERVED + b"\n", self.logmsg())
        second.close()
        self.assertEqual(first_line(third, timeout=5.0), SERVED + b"\n", self.logmsg())
        third.close()
        self.wait_children_gone()
        self.assertEqual(self.count_log(rf"\b{port}/tcp: max-child 1 reached", 1), 1,
                         self.logmsg("logged once (a minute at most)"))

    # -- -R: looping ---------------------------------------------------------------

    def test_looping_nowait_service_is_terminated(self):
        port = self.d.port()
        self.d.start(self.echo_service(port, "nowait"), args=["-R", "3"])
        self.assertEqual([ask("127.0.0.2", port) for _ in range(4)], [True, True, True, False],
                         self.logmsg())
        self.assertIsNotNone(
            self.d.wait_log(rf"\b{port}/tcp server failing \(looping\), service terminated"),
            self.logmsg("FreeBSD's looping line"))
        # Terminated: every connection is closed at once, from any host, no fork.
        self.assertEqual([ask(f"127.0.0.{i}", port) for i in range(3, 8)], [False] * 5)
        # The daemon and the other services go on.
        self.d.wait_ready()
        self.assertEqual(self.count_log(r"server failing \(looping\)", 1), 1, self.logmsg())
        self.assertNotIn("refused: invocation rate", self.d.log())  # the listener caught it

    def test_wait_dgram_service_that_exits_at_once_is_terminated(self):
        """The classic: a wait-mode datagram server that exits without
        reading. Its socket stays readable, so it is started again and again
        until -R stops it."""
        port = self.d.port()
        self.d.start(f"127.0.0.1:{port} dgram udp wait nobody /bin/true true\n",
                     args=["-R", "5"])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", ("127.0.0.1", port))
        self.assertIsNotNone(
            self.d.wait_log(rf"\b{port}/udp server failing \(looping\), service terminated",
                            timeout=10.0),
            self.logmsg("looping wait dgram service"))
        time.sleep(0.5)
        self.assertEqual(self.d.service_pids("true"), [], self.logmsg("still started"))
        self.d.wait_ready()
        self.assertTrue(self.d.proc.poll() is None, self.logmsg("daemon still up"))

    # -- -R: the comeback ------------------------------------------------------

    # privileged/requests.cc: the monitor counts -R on its own, in a window
    # of 60 s opened by the first spawn it grants; a connection the listener
    # lets through before that window ends is refused by the monitor.
    MONITOR_WINDOW = 60.0

    def looping_comeback(self, pause):
        """A service over -R is terminated, closes every connection for
        `pause` seconds, comes back by itself with a fresh window, and the
        daemon and the other services keep running throughout."""
        port = self.d.port()
        # -R 3 counts the readiness probe too (3 a minute): it is asked once
        # at start, once while terminated, once at the end (a minute later).
        self.d.start(self.echo_service(port, "nowait"), args=["-R", "3"])
        t_first = time.monotonic()
        self.assertEqual([ask("127.0.0.2", port) for _ in range(3)], [True] * 3, self.logmsg())
        t_over = time.monotonic()
        self.assertFalse(ask("127.0.0.2", port), self.logmsg("the 4th invocation in a minute"))
        looping = rf"\b{port}/tcp server failing \(looping\), service terminated"
        self.assertIsNotNone(self.d.wait_log(looping), self.logmsg("FreeBSD's looping line"))
        # Terminated: closed at once, from any host, nothing started.
        self.assertEqual([ask(f"127.0.0.{i}", port) for i in range(3, 6)], [False] * 3,
                         self.logmsg("while terminated"))
        self.d.wait_ready()  # the other services go on
        # Back by itself after the pause (the listener looks once a second).
        back = rf"\b{port}/tcp: back in service after the looping pause \(3 dropped meanwhile\)"
        self.assertIsNotNone(self.d.wait_log(back, timeout=pause + 10.0),
                             self.logmsg(f"no comeback within {pause} + 10 s"))
        self.assertGreaterEqual(time.monotonic() - t_over, pause - 0.05,
                                self.logmsg("back before the pause ended"))
        # The monitor's own -R window must end too before a spawn is granted
        # (only with a pause shorter than it); connecting meanwhile would
        # spend the listener's fresh count on the monitor's refusals.
        wait = t_first + self.MONITOR_WINDOW + 1.0 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        # Served again, with a fresh window: 3 more, and the 4th terminates
        # it again.
        self.assertEqual([ask("127.0.0.9", port) for _ in range(4)], [True, True, True, False],
                         self.logmsg("after the comeback"))
        self.assertEqual(self.count_log(looping, 2), 2, self.logmsg("looping again"))
        self.assertNotIn("refused: invocation rate", self.d.log())  # the listener caught it all
        self.d.wait_ready()
        self.assertIsNone(self.d.proc.poll(), self.logmsg("daemon still up"))

    def test_looping_service_comes_back_after_ten_minutes(self):
        """The real ten-minute pause (INETD_IT_SLOW=1 only)."""
        if not os.environ.get("INETD_IT_SLOW"):
            self.skipTest("takes 11 minutes: set INETD_IT_SLOW=1 to run it")
        self.looping_comeback(600)
