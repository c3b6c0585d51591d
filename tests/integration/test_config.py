"""Configuration errors, host prefixes and SIGHUP reload."""

import os
import re
import signal
import socket
import unittest

import harness
from harness import InetdTestCase, connect_refused, tcp_exchange


class ConfigTest(InetdTestCase):

    def test_bad_lines_are_named_and_skipped(self):
        good1, good2, bad_user, bad_type, bad_proto = (self.d.port() for _ in range(5))
        conf = (
            "# line 1: a comment\n"
            "127.0.0.1:\n"
            f"{good1} stream tcp nowait nobody /bin/echo echo good one\n"              # 3
            f"{bad_user} stream tcp nowait nosuchuser_it /bin/echo echo x\n"            # 4
            "nosuchservice-it stream tcp nowait nobody /bin/echo echo x\n"             # 5
            f"{bad_type} streem tcp nowait nobody /bin/echo echo x\n"                  # 6
            f"{bad_proto} stream tcpx nowait nobody /bin/echo echo x\n"                # 7
            f"{bad_type} stream tcp nowait nobody /nonexistent/prog prog\n"            # 8
            "\n"                                                                       # 9
            f"{good2} stream tcp nowait nobody /bin/echo\n"                            # 10
            "\techo good two\n")                                                       # 11 (continuation)
        self.d.start(conf)
        conf_path = self.d.conf_path
        log = self.d.log()
        expect = [
            (4, r"user: unknown user \"nosuchuser_it\""),
            (5, r"service: unknown service \"nosuchservice-it\""),
            (6, r"socket-type: unknown socket type \"streem\""),
            (7, r"protocol: unknown protocol \"tcpx\""),
            (8, r"server-program: .*/nonexistent/prog"),
        ]
        for line, what in expect:
            self.assertRegex(log, re.escape(f"{conf_path}:{line}: ") + what)
        self.assertEqual(tcp_exchange("127.0.0.1", good1), b"good one\n", self.logmsg())
        self.assertEqual(tcp_exchange("127.0.0.1", good2), b"good two\n", self.logmsg())
        for port in (bad_user, bad_type, bad_proto):
            self.assertTrue(connect_refused("127.0.0.1", port), f"port {port} of a bad entry is bound")
        # Two good entries and the readiness probe.
        self.assertRegex(log, re.escape(conf_path) + r": 3 services, generation 1")

    def test_host_prefix_binds_only_that_address(self):
        port = self.d.port(v6=harness.have_ipv6_loopback())
        self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody /bin/echo echo v4\n")
        self.assertEqual(tcp_exchange("127.0.0.1", port), b"v4\n")
        # 127.0.0.2 is loopback too, but not the bound address.
        self.assertTrue(connect_refused("127.0.0.2", port))
        if harness.have_ipv6_loopback():
            self.assertTrue(connect_refused("::1", port))

    def test_ipv6_entry(self):
        if not harness.have_ipv6_loopback():
            self.skipTest("no ::1")
        port = self.d.port(v6=True)
        self.d.start(f"[::1]:{port} stream tcp6 nowait nobody /bin/echo echo v6\n")
        self.assertEqual(tcp_exchange("::1", port), b"v6\n", self.logmsg())
        self.assertTrue(connect_refused("127.0.0.1", port))

    def test_bind_address_option(self):
        """-a sets the address of entries that name none."""
        port = self.d.port()
        self.d.start(f"{port} stream tcp nowait nobody /bin/echo echo a\n", args=["-a", "127.0.0.1"])
        self.assertEqual(tcp_exchange("127.0.0.1", port), b"a\n", self.logmsg())
        self.assertTrue(connect_refused("127.0.0.2", port), "-a ignored: not bound to 127.0.0.1 only")

    def test_unix_stream_service(self):
        plain = self.d.path("plain.sock")
        owned = self.d.path("owned.sock")
        nobody = harness.user_ids("nobody")
        daemon_gid = harness.group_id("daemon")
        self.d.start(f"{plain} stream unix nowait nobody /bin/echo echo plain\n"
                     f":nobody:daemon:0660:{owned} stream unix nowait nobody /bin/echo echo owned\n")
        for path, want in ((plain, b"plain\n"), (owned, b"owned\n")):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(path)
                self.assertEqual(harness.read_all(s, harness.time.monotonic() + 5), want,
                                 self.logmsg(path))
        st = os.stat(plain)
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (0, 0o200))  # FreeBSD's default
        st = os.stat(owned)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (nobody[0], daemon_gid, 0o660))
        self.assertEqual(self.d.stop(), 0)
        self.assertFalse(os.path.exists(plain), "unix socket path left after exit")
        self.assertFalse(os.path.exists(owned), "unix socket path left after exit")

    def test_sighup_reload(self):
        keep, drop, add = self.d.port(), self.d.port(), self.d.port()
        self.d.start(f"127.0.0.1:{keep} stream tcp nowait nobody /bin/echo echo keep\n"
                     f"127.0.0.1:{drop} stream tcp nowait nobody /bin/echo echo drop\n")
        self.assertEqual(tcp_exchange("127.0.0.1", drop), b"drop\n")
        probe = self.d.ready_port
        # The unchanged entry now says something else: the socket is kept,
        # the new program is used.
        self.d.write("inetd.conf",
                     f"127.0.0.1:{keep} stream tcp nowait nobody /bin/echo echo kept\n"
                     f"127.0.0.1:{add} stream tcp nowait nobody /bin/echo echo added\n"
                     f"127.0.0.1:{probe} stream tcp nowait nobody /bin/echo echo "
                     f"{harness.READY_TEXT}\n")
        self.d.kill(signal.SIGHUP)
        self.assertIsNotNone(self.d.wait_log(r": 3 services, generation 2"),
                             self.logmsg("no reload after SIGHUP"))
        got = harness.wait_until(lambda: _try(lambda: tcp_exchange("127.0.0.1", add)), timeout=5)
        self.assertEqual(got, b"added\n", self.logmsg("added service"))
        self.assertEqual(tcp_exchange("127.0.0.1", keep), b"kept\n", self.logmsg("kept service"))
        self.assertTrue(connect_refused("127.0.0.1", drop), "removed service still bound")
        self.assertIsNone(self.d.proc.poll())

    # A reload that keeps a socket but changes who accepts on it (wait <->
    # nowait, external <-> internal) must also change its O_NONBLOCK: the
    # listener accepts in a loop until EAGAIN, and a wait-mode child expects
    # a blocking socket. The monitor creates the socket with the flag of its
    # first mode (sockets.cc) and keeps it across reloads (Monitor::Load).

    def reload(self, conf_text):
        self.d.write("inetd.conf", conf_text.rstrip("\n") + "\n"
                     f"127.0.0.1:{self.d.ready_port} stream tcp nowait nobody /bin/echo echo "
                     f"{harness.READY_TEXT}\n")
        gen = len(re.findall(r"services, generation", self.d.log())) + 1
        self.d.kill(signal.SIGHUP)
        self.assertIsNotNone(self.d.wait_log(rf"services, generation {gen}\b"),
                             self.logmsg("no reload"))
        # The listener has the new table once the probe answers again.
        self.assertIn(harness.READY_TEXT.encode(), tcp_exchange("127.0.0.1", self.d.ready_port))

    def test_sighup_wait_to_nowait_does_not_block_listener(self):
        if not os.access("/usr/bin/python3", os.X_OK):
            self.skipTest("/usr/bin/python3 is missing")
        port, other = self.d.port(), self.d.port()
        script = self.d.write("accept_once.py", (
            "import socket\n"
            "s = socket.socket(fileno=0)\n"
            "c, _ = s.accept()\n"
            "c.sendall(b'wait\\n')\n"
            "c.close()\n"))
        other_line = f"127.0.0.1:{other} stream tcp nowait nobody /bin/echo echo other\n"
        self.d.start(f"127.0.0.1:{port} stream tcp wait nobody /usr/bin/python3 python3 {script}\n"
                     + other_line)
        self.assertEqual(tcp_exchange("127.0.0.1", port), b"wait\n")
        self.reload(f"127.0.0.1:{port} stream tcp nowait nobody /bin/echo echo nowait\n" + other_line)
        self.assertEqual(tcp_exchange("127.0.0.1", port), b"nowait\n", self.logmsg())
        # After that accept the listener must be back in epoll_wait, not
        # blocked in a second accept4() on a blocking socket.
        self.assertEqual(tcp_exchange("127.0.0.1", other, timeout=3), b"other\n",
                         self.logmsg("listener stuck after a wait->nowait reload"))

    def test_sighup_nowait_to_wait_gives_blocking_socket(self):
        if not os.access("/usr/bin/python3", os.X_OK):
            self.skipTest("/usr/bin/python3 is missing")
        port = self.d.port()
        script = self.d.write("report_blocking.py", (
            "import os, socket\n"
            "blocking = os.get_blocking(0)\n"
            "s = socket.socket(fileno=0)\n"
            "c, _ = s.accept()\n"
            "c.sendall(b'blocking=%d\\n' % blocking)\n"
            "c.close()\n"))
        self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody /bin/echo echo nowait\n")
        self.assertEqual(tcp_exchange("127.0.0.1", port), b"nowait\n")
        self.reload(f"127.0.0.1:{port} stream tcp wait nobody /usr/bin/python3 python3 {script}\n")
        self.assertEqual(tcp_exchange("127.0.0.1", port), b"blocking=1\n",
                         self.logmsg("a wait-mode child got a non-blocking listening socket"))

    def test_sighup_while_wait_child_runs(self):
        """A reload while a wait-mode child runs: the new table says the
        service is busy, and the child's exit (reported under the new
        generation) resumes polling."""
        if not os.access("/usr/bin/python3", os.X_OK):
            self.skipTest("/usr/bin/python3 is missing")
        port = self.d.port()
        script = self.d.write("slow_udp.py", (
            "import os, socket, time\n"
            "time.sleep(0.8)\n"
            "s = socket.socket(fileno=0)\n"
            "data, peer = s.recvfrom(2048)\n"
            "s.sendto(b'slow:' + data, peer)\n"))
        line = f"127.0.0.1:{port} dgram udp wait nobody /usr/bin/python3 python3 {script}\n"
        self.d.start(line)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            s.send(b"one")
            # The child is running (sleeping) when the reload happens.
            self.assertTrue(harness.wait_until(lambda: self.d.service_pids("python3"), timeout=3))
            self.reload(line)
            self.assertEqual(s.recv(100), b"slow:one", self.logmsg())
            s.send(b"two")
            self.assertEqual(s.recv(100), b"slow:two", self.logmsg("no reply after the reload"))

    def test_sighup_with_unreadable_config_keeps_running(self):
        port = self.d.port()
        self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody /bin/echo echo still\n")
        os.unlink(self.d.conf_path)
        self.d.kill(signal.SIGHUP)
        self.assertIsNotNone(self.d.wait_log(r"unreadable: keeping the running table"),
                             self.logmsg())
        self.assertEqual(tcp_exchange("127.0.0.1", port), b"still\n")


def _try(fn):
    try:
        return fn()
    except OSError:
        return None


if __name__ == "__main__":
    unittest.main()
