"""Start-up failures, the pidfile, and SIGTERM."""

import os
import signal
import socket
import time
import unittest

import harness
from harness import InetdTestCase, connect_refused, tcp_exchange


class ShutdownTest(InetdTestCase):

    def test_sigterm_exits_zero_removes_pidfile_leaves_children(self):
        port, echo = self.d.port(), self.d.port()
        self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody /bin/sleep sleep 30\n"
                     f"127.0.0.1:{echo} stream tcp nowait nobody /bin/echo echo hi\n")
        with open(self.d.pidfile) as f:
            self.assertEqual(f.read().strip(), str(self.d.pid))
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            sleepers = harness.wait_until(lambda: self.d.service_pids("sleep"), timeout=5)
        self.assertEqual(len(sleepers), 1, self.logmsg("the sleep service did not start"))
        sleeper = sleepers[0]
        self.d.extra_pids.append(sleeper)
        listener = self.d.listener_pid()
        self.assertIsNotNone(listener)

        self.d.kill(signal.SIGTERM)
        try:
            rc = self.d.proc.wait(5)
        except Exception:
            self.fail(self.logmsg("inetd did not exit within 5 s of SIGTERM"))
        self.assertEqual(rc, 0, self.logmsg("exit status after SIGTERM"))
        self.assertFalse(os.path.exists(self.d.pidfile), "pidfile left behind")
        # Running services are left alone, as in FreeBSD.
        self.assertTrue(harness.alive(sleeper), "SIGTERM killed a running service")
        self.assertEqual(harness.proc_cmdline(sleeper), ["sleep", "30"])
        # The listener is gone before the monitor exits: the ports are free
        # at once, for an inetd started right after.
        self.assertFalse(harness.alive(listener), "the listener outlived the monitor")
        self.assertTrue(connect_refused("127.0.0.1", echo))
        self.assertTrue(harness.port_free(echo, udp=False))
        harness.kill_and_reap([sleeper])
        self.assertFalse(harness.alive(sleeper))

    def test_sigint_exits_zero(self):
        self.d.start("")
        self.d.kill(signal.SIGINT)
        self.assertEqual(self.d.proc.wait(5), 0, self.logmsg())
        self.assertFalse(os.path.exists(self.d.pidfile))

    def test_second_daemon_on_same_pidfile_refused(self):
        self.d.start("")
        other = harness.Inetd()
        self.addCleanup(other.cleanup)
        port = other.port()
        other.write("inetd.conf", f"127.0.0.1:{port} stream tcp nowait nobody /bin/echo echo x\n")
        rc, out = other.run_to_exit(["-d", "-u", "nobody", "-p", self.d.pidfile, other.conf_path])
        self.assertNotIn(rc, (0, None), out)
        self.assertIn("locked", out)
        # The first daemon's pidfile is intact and it still serves.
        with open(self.d.pidfile) as f:
            self.assertEqual(f.read().strip(), str(self.d.pid))
        self.assertIn(harness.READY_TEXT.encode(), tcp_exchange("127.0.0.1", self.d.ready_port))


class StartupFailureTest(InetdTestCase):

    def test_unknown_user(self):
        self.d.write("inetd.conf", "")
        rc, out = self.d.run_to_exit(["-d", "-u", "nosuchuser_it", self.d.conf_path])
        self.assertEqual(rc, 67, out)
        self.assertIn("nosuchuser_it", out)

    def test_unknown_flag(self):
        rc, out = self.d.run_to_exit(["-x"])
        self.assertEqual(rc, 64, out)
        self.assertIn("usage", out)
        self.assertIn("-x", out)

    def test_bad_option_values(self):
        for argv in (["-c", "12abc"], ["-R", "-1"], ["-u", ""], ["-d", "a.conf", "b.conf"], ["-p"]):
            with self.subTest(argv=argv):
                rc, out = self.d.run_to_exit(argv)
                self.assertEqual(rc, 64, out)
                self.assertIn("usage", out)

    def test_missing_config(self):
        missing = self.d.path("no-such.conf")
        rc, out = self.d.run_to_exit(["-d", "-u", "nobody", missing])
        self.assertNotIn(rc, (0, None), out)
        self.assertIn(missing, out)
        self.assertIn("No such file", out)

    def test_directory_as_config(self):
        rc, out = self.d.run_to_exit(["-d", "-u", "nobody", self.d.tmp])
        self.assertNotIn(rc, (0, None), out)
        self.assertIn(self.d.tmp, out)

    def test_listener_user_root_refused(self):
        self.d.write("inetd.conf", "")
        rc, out = self.d.run_to_exit(["-d", "-u", "root", self.d.conf_path])
        self.assertNotIn(rc, (0, None), out)
        self.assertIn("root", out)


if __name__ == "__main__":
    unittest.main()
