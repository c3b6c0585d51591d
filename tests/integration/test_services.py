"""External services: credentials, fds, argv, wait-mode datagrams, -l."""

import os
import re
import signal
import socket
import time
import unittest

import harness
from harness import InetdTestCase, tcp_exchange, udp_exchange


def status_fields(text):
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.split()
    return out


# The service prints, section by section ("--" between them): its argv from
# /proc/$$/cmdline, id -u/-g/-G, the Uid/Gid/Groups/Cap*/NoNewPrivs lines of
# its own status, and its open fds. Every probe is a child reading /proc/$$
# of the shell, so the shell itself opens nothing (a glob or $(...) in the
# shell would add a directory fd or a pipe to what it lists).
PROBE = ("tr '\\0' '\\n' < /proc/$$/cmdline; echo --; id -u; id -g; id -G; echo --; "
         "grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs):' "
         "/proc/$$/status; echo --; ls -1 /proc/$$/fd; echo --; echo $$; cat /proc/$$/stat")


class ServiceTest(InetdTestCase):

    def run_probe(self, user_field):
        port = self.d.port()
        self.d.start(
            f"# credentials probe\n"
            f"127.0.0.1:{port} stream tcp nowait {user_field} /bin/sh "
            f"sh -c \"{PROBE}\" \"arg with spaces\" 'single quoted' plain\n")
        out = tcp_exchange("127.0.0.1", port).decode()
        sections = out.split("--\n")
        self.assertEqual(len(sections), 5, self.logmsg(f"service output: {out!r}"))
        argv = sections[0].rstrip("\n").split("\n")
        ids = sections[1].split()
        status = status_fields(sections[2])
        fds = sorted(int(x) for x in sections[3].split())
        # A fresh session without a controlling terminal (the spawner's setsid).
        pid, stat = sections[4].split("\n", 1)
        fields = stat[stat.rfind(")") + 2:].split()
        self.assertEqual(fields[3], pid, f"not a session leader: {stat!r}")  # session
        self.assertEqual(fields[2], pid, f"not a group leader: {stat!r}")    # pgrp
        self.assertEqual(fields[4], "0", "has a controlling terminal")        # tty_nr
        return argv, ids, status, fds

    def test_nowait_stream_as_nobody(self):
        uid, gid, groups = harness.user_ids("nobody")
        argv, ids, status, fds = self.run_probe("nobody")
        # argv exactly as configured, quoted fields kept whole.
        self.assertEqual(argv, ["sh", "-c", PROBE, "arg with spaces", "single quoted", "plain"])
        # id -u, id -g, id -G
        self.assertEqual(int(ids[0]), uid)
        self.assertEqual(int(ids[1]), gid)
        self.assertEqual(sorted(set(int(g) for g in ids[2:])), sorted(set(groups) | {gid}))
        # The kernel's view: real, effective, saved and fs ids all dropped.
        self.assertEqual(status["Uid"], [str(uid)] * 4)
        self.assertEqual(status["Gid"], [str(gid)] * 4)
        self.assertEqual(sorted(int(g) for g in status.get("Groups", [])), groups)
        for cap in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
            self.assertEqual(int(status[cap][0], 16), 0, f"{cap} of a service run as nobody")
        # fd 0, 1, 2 = the connection; nothing else leaked from the monitor.
        self.assertEqual(fds, [0, 1, 2], self.logmsg("the service's open fds"))

    def test_explicit_group_as_root(self):
        daemon_gid = harness.group_id("daemon")
        argv, ids, status, fds = self.run_probe("root:daemon")
        self.assertEqual(int(ids[0]), 0)
        self.assertEqual(int(ids[1]), daemon_gid)
        self.assertEqual(status["Uid"], ["0"] * 4)
        self.assertEqual(status["Gid"], [str(daemon_gid)] * 4)
        # initgroups("root", daemon): root's group list built on the entry's group.
        want = sorted(set(os.getgrouplist("root", daemon_gid)))
        self.assertEqual(sorted(int(g) for g in status.get("Groups", [])), want)
        self.assertEqual(fds, [0, 1, 2])

    def test_nobody_group_by_number_and_dot_syntax(self):
        """OpenBSD's user.group separator and a numeric group."""
        daemon_gid = harness.group_id("daemon")
        uid, _, _ = harness.user_ids("nobody")
        argv, ids, status, fds = self.run_probe(f"nobody.{daemon_gid}")
        self.assertEqual(status["Uid"], [str(uid)] * 4)
        self.assertEqual(status["Gid"], [str(daemon_gid)] * 4)
        self.assertIn(str(daemon_gid), status.get("Groups", []))

    def test_wait_dgram_service_resumes_after_exit(self):
        if not os.access("/usr/bin/python3", os.X_OK):
            self.skipTest("/usr/bin/python3 is missing")
        port = self.d.port()
        script = self.d.write("udp_once.py", (
            "import os, socket\n"
            "s = socket.socket(fileno=0)\n"
            "data, peer = s.recvfrom(2048)\n"
            "s.sendto(b'reply:' + data + b' pid=' + str(os.getpid()).encode(), peer)\n"))
        self.d.start(f"127.0.0.1:{port} dgram udp wait nobody /usr/bin/python3 python3 {script}\n")
        replies = []
        for word in (b"first", b"second", b"third"):
            reply = udp_exchange("127.0.0.1", port, word, timeout=5)
            self.assertIsNotNone(reply, self.logmsg(f"no reply to {word!r}"))
            m = re.fullmatch(rb"reply:(\w+) pid=(\d+)", reply)
            self.assertIsNotNone(m, reply)
            self.assertEqual(m.group(1), word)
            replies.append(int(m.group(2)))
        # One child per datagram: the listener polled again after each Exited.
        self.assertEqual(len(set(replies)), 3, replies)

    def test_wait_stream_service_gets_listening_socket(self):
        """A wait stream service is handed the listening socket and accepts
        by itself; inetd polls again when it exits."""
        if not os.access("/usr/bin/python3", os.X_OK):
            self.skipTest("/usr/bin/python3 is missing")
        port = self.d.port()
        script = self.d.write("accept_once.py", (
            "import os, socket\n"
            "s = socket.socket(fileno=0)\n"
            "assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1\n"
            "c, _ = s.accept()\n"
            "c.sendall(b'accepted by %d\\n' % os.getpid())\n"
            "c.close()\n"))
        self.d.start(f"127.0.0.1:{port} stream tcp wait nobody /usr/bin/python3 python3 {script}\n")
        pids = []
        for _ in range(2):
            out = tcp_exchange("127.0.0.1", port, timeout=5)
            m = re.fullmatch(rb"accepted by (\d+)\n", out)
            self.assertIsNotNone(m, self.logmsg(f"wait stream service said {out!r}"))
            pids.append(m.group(1))
        self.assertNotEqual(pids[0], pids[1])

    def test_exec_failure_is_logged(self):
        """A program that vanished after the configuration was read: the
        connection closes, the log says why, the daemon serves on."""
        port, other = self.d.port(), self.d.port()
        prog = self.d.script("vanishing.sh", "#!/bin/sh\necho never\n")
        self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody {prog} vanishing\n"
                     f"127.0.0.1:{other} stream tcp nowait nobody /bin/echo echo other\n")
        os.unlink(prog)
        self.assertEqual(tcp_exchange("127.0.0.1", port), b"")
        self.assertIsNotNone(self.d.wait_log(re.escape(prog) + r".*(execve|No such file)"),
                             self.logmsg("exec failure not logged"))
        self.assertIsNotNone(self.d.wait_log(re.escape(prog) + r"\[\d+\]: exited, status 127"),
                             self.logmsg("exit status 127 not logged"))
        self.assertEqual(tcp_exchange("127.0.0.1", other), b"other\n")

    def test_signals_reset(self):
        """The monitor blocks SIGCHLD/SIGHUP/SIGTERM/SIGINT and ignores
        SIGPIPE; a service starts with nothing blocked or ignored, even when
        inetd itself was started with signals ignored (as nohup does): the
        monitor drops what it inherited, so its child has only SIGPIPE to
        undo. (grep is exec'd directly: dash would clear the mask itself and
        hide a bug.)"""
        port = self.d.port()
        inherited = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGUSR2, signal.SIGTTOU)}
        try:
            self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody /bin/grep "
                         f"grep -E ^Sig(Blk|Ign): /proc/self/status\n")
        finally:
            for sig, old in inherited.items():
                signal.signal(sig, old)
        status = status_fields(tcp_exchange("127.0.0.1", port).decode())
        self.assertIn("SigBlk", status, self.logmsg())
        self.assertEqual(int(status["SigBlk"][0], 16), 0, "signals blocked in the service")
        self.assertEqual(int(status["SigIgn"][0], 16), 0, "signals ignored in the service")

    def test_max_child_queues_connections(self):
        """nowait/1: while one child runs, the next connection waits in the
        backlog and is served when the child exits."""
        port = self.d.port()
        self.d.start(f"127.0.0.1:{port} stream tcp nowait/1 nobody /bin/sh "
                     f"sh -c \"echo start; sleep 0.6; echo end\"\n")
        a = socket.create_connection(("127.0.0.1", port), timeout=5)
        b = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            self.assertEqual(a.recv(6), b"start\n")
            t_a = time.monotonic()
            got_b = b.recv(6)
            t_b = time.monotonic()
            self.assertEqual(got_b, b"start\n", self.logmsg())
            self.assertGreater(t_b - t_a, 0.4, "the second child started while the first ran")
            self.assertEqual(harness.read_all(a, time.monotonic() + 5), b"end\n")
            self.assertEqual(harness.read_all(b, time.monotonic() + 5), b"end\n")
        finally:
            a.close()
            b.close()

    def test_connection_log(self):
        port = self.d.port()
        self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody /bin/echo echo hello\n",
                     args=["-l"])
        self.assertEqual(tcp_exchange("127.0.0.1", port), b"hello\n")
        m = self.d.wait_log(rf"\b{port}/tcp from 127\.0\.0\.1 \[(\d+)\]")
        self.assertIsNotNone(m, self.logmsg("no connection log line naming service and peer"))
        child = m.group(1)
        self.assertIsNotNone(self.d.wait_log(rf"/bin/echo\[{child}\]: exited, status 0"),
                             self.logmsg("no exit line for the logged child"))

    def test_no_connection_log_without_l(self):
        port = self.d.port()
        self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody /bin/echo echo hello\n")
        self.assertEqual(tcp_exchange("127.0.0.1", port), b"hello\n")
        time.sleep(0.3)
        self.assertNotRegex(self.d.log(), rf"\b{port}/tcp from 127\.0\.0\.1")


if __name__ == "__main__":
    unittest.main()
