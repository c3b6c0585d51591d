"""The built-in services (RFC 862, 863, 864, 867, 868), served by the
listener, over TCP and UDP, on 127.0.0.1 and ::1.

Built-ins are known by their /etc/services name, so this test needs the
well-known ports 7, 9, 13, 19 and 37 free on loopback; it skips otherwise."""

import calendar
import re
import socket
import struct
import time
import unittest

import harness
from harness import InetdTestCase, tcp_exchange, udp_exchange

SERVICES = {"echo": 7, "discard": 9, "daytime": 13, "chargen": 19, "time": 37}
EPOCH_1900 = 2208988800  # seconds from 1900-01-01 to 1970-01-01


def chargen_line(n):
    """Line n of the RFC 864 pattern: 72 printable characters, CRLF."""
    return bytes(32 + (n + i) % 95 for i in range(72)) + b"\r\n"


class InternalTest(InetdTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hosts = ["127.0.0.1"] + (["::1"] if harness.have_ipv6_loopback() else [])
        v6 = len(cls.hosts) > 1
        # Another inetd test run on this host may hold them for a moment.
        def busy_ports():
            return [n for n, p in SERVICES.items() if not harness.port_free(p, v6=v6)]
        harness.wait_until(lambda: not busy_ports(), timeout=10, interval=0.2)
        busy = busy_ports()
        if busy:
            raise unittest.SkipTest(f"well-known ports in use on loopback: {busy}")

    def setUp(self):
        super().setUp()
        lines = []
        for name in SERVICES:
            lines.append(f"127.0.0.1:{name} stream tcp nowait root internal")
            lines.append(f"127.0.0.1:{name} dgram udp wait root internal")
            if "::1" in self.hosts:
                lines.append(f"[::1]:{name} stream tcp6 nowait root internal")
                lines.append(f"[::1]:{name} dgram udp6 wait root internal")
        self.conf_text = "\n".join(lines) + "\n"
        self.d.start(self.conf_text)
        if "Address already in use" in self.d.log():
            self.skipTest("a well-known port was taken by another process meanwhile:\n"
                          + self.d.log())

    def for_each_host(self, fn):
        for host in self.hosts:
            with self.subTest(host=host):
                fn(host)

    def test_echo(self):
        data = bytes(range(256)) * 64  # 16 KiB, more than one segment
        def check(host):
            self.assertEqual(tcp_exchange(host, 7, data), data, self.logmsg("tcp echo"))
            self.assertEqual(udp_exchange(host, 7, b"ping \x00\xff"), b"ping \x00\xff",
                             self.logmsg("udp echo"))
        self.for_each_host(check)

    def test_chargen(self):
        def check(host):
            with socket.create_connection((host, 19), timeout=5) as s:
                got = harness.read_all(s, time.monotonic() + 5, limit=74 * 3)
            self.assertGreaterEqual(len(got), 74 * 3, self.logmsg("chargen tcp"))
            self.assertEqual(got[:74], chargen_line(0))
            self.assertEqual(got[0:1], b" ")
            self.assertEqual(got[74:148], chargen_line(1))
            reply = udp_exchange(host, 19, b"x")
            self.assertIsNotNone(reply, self.logmsg("chargen udp"))
            self.assertRegex(reply, rb"^[ -~]{72}\r\n")
            self.assertIn(reply[:74], [chargen_line(i) for i in range(95)])
        self.for_each_host(check)

    def assert_daytime(self, text):
        m = re.fullmatch(rb"([A-Z][a-z]{2} [A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d \d{4})\r\n", text)
        self.assertIsNotNone(m, f"not ctime format + CRLF: {text!r}")
        # The listener answers in UTC (it cannot read /etc/localtime).
        t = calendar.timegm(time.strptime(m.group(1).decode(), "%a %b %d %H:%M:%S %Y"))
        self.assertLess(abs(t - time.time()), 3, text)

    def test_daytime(self):
        def check(host):
            self.assert_daytime(tcp_exchange(host, 13, shut=False))
            reply = udp_exchange(host, 13, b"?")
            self.assertIsNotNone(reply, self.logmsg("daytime udp"))
            self.assert_daytime(reply)
        self.for_each_host(check)

    def assert_time(self, data):
        self.assertEqual(len(data), 4, data)
        (t,) = struct.unpack("!I", data)
        self.assertLess(abs(t - EPOCH_1900 - time.time()), 2, t)

    def test_time(self):
        def check(host):
            self.assert_time(tcp_exchange(host, 37, shut=False))
            reply = udp_exchange(host, 37, b"")
            self.assertIsNotNone(reply, self.logmsg("time udp"))
            self.assert_time(reply)
        self.for_each_host(check)

    def test_time_with_rdate(self):
        """Debian's rdate (RFC 868 client) reads our time service, TCP and UDP,
        and prints a date within 2 s of ours (-p: print, never set)."""
        self.need_tools("rdate")
        import subprocess
        for extra in ([], ["-u"]):
            for host in self.hosts:
                fam = ["-6"] if ":" in host else ["-4"]
                out = subprocess.run(["rdate", "-p", *fam, *extra, host], capture_output=True,
                                     text=True, timeout=10, env={"TZ": "UTC", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
                self.assertEqual(out.returncode, 0, out.stderr + self.logmsg())
                # "rdate: [host]\tSun Nov 22 01:15:02 UTC 2026": the test runs in UTC.
                m = re.search(r"(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d) \w+ (\d{4})", out.stdout)
                self.assertIsNotNone(m, out.stdout)
                got = calendar.timegm(time.strptime(f"{m[1]} {m[2]}", "%a %b %d %H:%M:%S %Y"))
                self.assertLess(abs(got - time.time()), 2, out.stdout)

    def test_discard(self):
        def check(host):
            with socket.create_connection((host, 9), timeout=5) as s:
                for _ in range(8):
                    s.sendall(b"x" * 8192)
                s.shutdown(socket.SHUT_WR)
                # Nothing comes back; the server closes at our EOF (a
                # timeout here would raise, not pass).
                s.settimeout(5)
                self.assertEqual(s.recv(100), b"")
            self.assertIsNone(udp_exchange(host, 9, b"into the void", timeout=0.3))
            # The listener is still serving after all that.
            self.assertEqual(tcp_exchange(host, 7, b"after"), b"after")
        self.for_each_host(check)

    # With -l, FreeBSD's inetd logs
    # "SERVICE from PEER" for built-in services too: the listener logs the
    # connections it serves itself, the monitor those it forks for.
    def test_connection_log_for_builtins(self):
        self.d.stop()
        self.d.start(self.conf_text, args=["-l"])
        self.assertEqual(tcp_exchange("127.0.0.1", 7, b"x"), b"x")
        self.assertIsNotNone(self.d.wait_log(r"\becho(/tcp)? from 127\.0\.0\.1", timeout=2),
                             self.logmsg("no -l line for a built-in"))

    def test_many_concurrent_echo_connections(self):
        """Internal connections are multiplexed in one event loop: 50 open at
        once, each answered in any order."""
        socks = [socket.create_connection(("127.0.0.1", 7), timeout=5) for _ in range(50)]
        try:
            for i, s in enumerate(reversed(socks)):
                s.sendall(b"conn %d\n" % i)
            for i, s in enumerate(reversed(socks)):
                want = b"conn %d\n" % i
                got = b""
                while len(got) < len(want):
                    chunk = s.recv(100)
                    if not chunk:
                        break
                    got += chunk
                self.assertEqual(got, want)
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    unittest.main()
