"""SIGHUP reload under load, reload storms, listener death under load, -t,
and the SIGUSR1 status dump (issue 6)."""

import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import harness
from harness import InetdTestCase, connect_refused, tcp_exchange

# Generous bounds: the machine running these may be small and busy.
WAIT = 10.0

# -R 0: these tests open hundreds of connections a minute to one service,
# more than the default invocation rate (256/min) allows.
ARGS = ("-R", "0")


def _try(fn):
    try:
        return fn()
    except OSError:
        return None


def recv_line(s, timeout=WAIT):
    """Up to and including the first newline, EOF or the deadline."""
    return harness.read_all(s, time.monotonic() + timeout, line=True)


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except FileNotFoundError:
        return None


def fd_targets(pid):
    out = []
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return out
    for fd in names:
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    return sorted(out)


class ReloadBase(InetdTestCase):

    @staticmethod
    def start_clients(port, n):
        """`n` threads connecting to `port` over and over until
        stop_clients; each result is the reply, or the OSError."""
        stop = threading.Event()
        results = []

        def client():
            while not stop.is_set():
                try:
                    results.append(tcp_exchange("127.0.0.1", port, timeout=WAIT))
                except OSError as e:
                    results.append(e)
        threads = [threading.Thread(target=client, daemon=True) for _ in range(n)]
        for t in threads:
            t.start()
        return stop, results, threads

    @staticmethod
    def stop_clients(stop, threads):
        stop.set()
        for t in threads:
            t.join(WAIT)

    def probe_line(self):
        return (f"127.0.0.1:{self.d.ready_port} stream tcp nowait nobody /bin/echo echo "
                f"{harness.READY_TEXT}\n")

    def write_conf(self, text, atomic=True):
        """Writes inetd.conf with the readiness probe appended. Atomic
        (rename) by default, so a reload never reads half a file."""
        data = text.rstrip("\n") + "\n" + self.probe_line()
        if not atomic:
            self.d.write("inetd.conf", data)
            return
        tmp = self.d.write("inetd.conf.new", data)
        os.replace(tmp, self.d.conf_path)

    def generations(self):
        return len(re.findall(r"services, generation \d+", self.d.log()))

    def reload(self, text):
        """Writes the new file, sends SIGHUP, waits for the monitor to log
        the new generation and for the listener to serve the probe again."""
        self.write_conf(text)
        gen = self.generations() + 1
        self.d.kill(signal.SIGHUP)
        self.assertIsNotNone(self.d.wait_log(rf"services, generation {gen}\b", timeout=WAIT),
                             self.logmsg("no reload after SIGHUP"))
        # Retried: a connection accepted just before the listener took the
        # new table is refused as "stale generation" (see
        # test_connections_during_reloads_are_served). Once the probe answers,
        # the listener has the new table.
        self.assertTrue(harness.wait_until(lambda: self.probe_ok(), timeout=WAIT),
                        self.logmsg("probe after the reload"))

    def probe_ok(self):
        got = _try(lambda: tcp_exchange("127.0.0.1", self.d.ready_port, timeout=WAIT))
        return bool(got) and harness.READY_TEXT.encode() in got

    def hold(self, port, n, tag):
        """Opens `n` connections to a `cat` service on `port`, proves each
        is served (its line comes back) and returns them, open."""
        conns = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
            self.addCleanup(s.close)
            conns.append(s)
        for i, s in enumerate(conns):
            line = f"{tag} {i}\n".encode()
            s.sendall(line)
        for i, s in enumerate(conns):
            self.assertEqual(recv_line(s), f"{tag} {i}\n".encode(),
                             self.logmsg(f"connection {i} not served"))
        return conns

    def status_dump(self, pattern):
        """SIGUSR1, then the first match of `pattern` logged after it."""
        before = len(self.d.log())
        self.d.kill(signal.SIGUSR1)
        rx = re.compile(pattern, re.M)
        m = harness.wait_until(lambda: rx.search(self.d.log()[before:]), timeout=WAIT)
        self.assertIsNotNone(m, self.logmsg(f"no status line matching {pattern!r}"))
        return m


class ReloadUnderLoadTest(ReloadBase):

    N = 50

    def test_reload_keeps_held_connections(self):
        keep, change, drop, add = (self.d.port() for _ in range(4))
        # No exec: the shell stays, so the program of a connection shows in /proc.
        v1 = self.d.script("v1.sh", "#!/bin/sh\necho v1\ncat\n")
        v2 = self.d.script("v2.sh", "#!/bin/sh\necho v2\ncat\n")
        keep_line = f"127.0.0.1:{keep} stream tcp nowait nobody /bin/cat cat\n"
        self.d.start(keep_line
                     + f"127.0.0.1:{change} stream tcp nowait nobody {v1} v1.sh\n"
                     + f"127.0.0.1:{drop} stream tcp nowait nobody /bin/cat cat\n",
                     args=ARGS)
        held = self.hold(keep, self.N, "before")
        # One held connection each to the service whose program changes and
        # to the one that goes away.
        old_change = socket.create_connection(("127.0.0.1", change), timeout=WAIT)
        self.addCleanup(old_change.close)
        self.assertEqual(recv_line(old_change), b"v1\n", self.logmsg())
        old_drop = self.hold(drop, 1, "drop")[0]
        cats = harness.wait_until(
            lambda: (lambda p: p if len(p) >= self.N + 2 else None)(self.d.service_pids("cat")),
            timeout=WAIT)
        self.assertTrue(cats, self.logmsg("not every connection has its cat"))
        self.status_dump(rf"status: {keep}/tcp: children {self.N}/0, spawned {self.N}, refused 0$")

        self.reload(keep_line
                    + f"127.0.0.1:{change} stream tcp nowait nobody {v2} v2.sh\n"
                    + f"127.0.0.1:{add} stream tcp nowait nobody /bin/echo echo added\n")
        self.assertIsNone(self.d.proc.poll(), self.logmsg("inetd died in the reload"))

        # None of the held connections was dropped: each still answers.
        for i, s in enumerate(held):
            s.sendall(f"after {i}\n".encode())
        for i, s in enumerate(held):
            self.assertEqual(recv_line(s), f"after {i}\n".encode(),
                             self.logmsg(f"held connection {i} dropped by the reload"))
        # The added service answers; the removed one refuses, but its
        # running child is left alone.
        self.assertEqual(tcp_exchange("127.0.0.1", add, timeout=WAIT), b"added\n", self.logmsg())
        self.assertTrue(connect_refused("127.0.0.1", drop), "removed service still bound")
        old_drop.sendall(b"still\n")
        self.assertEqual(recv_line(old_drop), b"still\n", "the reload killed a removed service's child")
        # The changed program runs for the next connection; the old
        # connection keeps its old program.
        with socket.create_connection(("127.0.0.1", change), timeout=WAIT) as s:
            self.assertEqual(recv_line(s), b"v2\n", self.logmsg("old program after the reload"))
        old_change.sendall(b"old\n")
        self.assertEqual(recv_line(old_change), b"old\n")
        programs = [harness.proc_cmdline(p) for p in self.d.service_pids()]
        self.assertIn(["/bin/sh", v1], programs, "the old connection's v1 program is gone")

        # The monitor's counters continued: children and spawned count the
        # connections from before the reload, plus one new one.
        extra = self.hold(keep, 1, "new")
        self.assertEqual(len(extra), 1)
        self.status_dump(rf"status: {keep}/tcp: children {self.N + 1}/0, spawned {self.N + 1}, "
                         r"refused 0$")
        self.assertNotRegex(self.d.log(), r"violation|killed by signal")

    def test_reload_with_bad_lines(self):
        """Bad lines in the new file are named FILE:LINE and skipped; the
        good ones take effect."""
        keep, bad, add = self.d.port(), self.d.port(), self.d.port()
        keep_line = f"127.0.0.1:{keep} stream tcp nowait nobody /bin/echo echo keep\n"
        self.d.start(keep_line, args=ARGS)
        before = len(self.d.log())
        self.reload("# new file\n"                                                          # 1
                    + keep_line                                                             # 2
                    + f"127.0.0.1:{bad} stream tcp nowait nosuchuser_it /bin/echo echo x\n"  # 3
                    + f"127.0.0.1:{add} stream tcp nowait nobody /bin/echo echo added\n")   # 4
        log = self.d.log()[before:]
        self.assertRegex(log, re.escape(f"{self.d.conf_path}:3: ") + r"user: .*nosuchuser_it")
        self.assertNotIn(f"{self.d.conf_path}:2:", log)
        self.assertNotIn(f"{self.d.conf_path}:4:", log)
        self.assertEqual(tcp_exchange("127.0.0.1", add, timeout=WAIT), b"added\n")
        self.assertEqual(tcp_exchange("127.0.0.1", keep, timeout=WAIT), b"keep\n")
        self.assertTrue(connect_refused("127.0.0.1", bad))

    def test_listener_counters_continue_across_reload(self):
        port = self.d.port()
        line = f"127.0.0.1:{port} stream tcp nowait nobody /bin/echo echo x\n"
        self.d.start(line, args=ARGS)
        for _ in range(3):
            self.assertEqual(tcp_exchange("127.0.0.1", port, timeout=WAIT), b"x\n")
        self.status_dump(rf"status: {port}/tcp: polling, running \d+, accepted 3\b")
        self.reload(line)
        self.assertEqual(tcp_exchange("127.0.0.1", port, timeout=WAIT), b"x\n")
        self.status_dump(rf"status: {port}/tcp: polling, running \d+, accepted 4\b")


class ReloadStormTest(ReloadBase):

    SIGNALS = 100

    def settled_fds(self, pid, want, timeout=WAIT):
        """Waits until `pid` holds `want` fds (connections in flight come and
        go); returns the last count."""
        last = [None]

        def check():
            last[0] = fd_count(pid)
            return last[0] == want
        harness.wait_until(check, timeout=timeout, interval=0.1)
        return last[0]

    def test_reload_storm(self):
        steady, churn, final = self.d.port(), self.d.port(), self.d.port()
        steady_line = f"127.0.0.1:{steady} stream tcp nowait nobody /bin/echo echo steady\n"
        churn_line = f"127.0.0.1:{churn} stream tcp nowait nobody /bin/echo echo churn\n"
        self.d.start(steady_line + churn_line, args=ARGS)
        monitor, listener = self.d.pid, self.d.listener_pid()
        self.assertIsNotNone(listener)
        # Quiet: the probe's echo has exited and been reported.
        self.assertTrue(harness.wait_until(lambda: not self.d.service_pids(), timeout=WAIT))
        time.sleep(0.3)
        mon_fds, lst_fds = fd_count(monitor), fd_count(listener)
        mon_targets, lst_targets = fd_targets(monitor), fd_targets(listener)

        # Connections keep arriving at the unchanged service all along.
        stop, results, threads = self.start_clients(steady, 3)
        try:
            # Every other file adds, then removes, one service: each reload
            # that runs binds or closes a socket.
            start = time.monotonic()
            for i in range(self.SIGNALS - 1):
                self.write_conf(steady_line + (churn_line if i % 2 else ""))
                os.kill(monitor, signal.SIGHUP)
                time.sleep(0.008)
            # The last file differs from every earlier one.
            self.write_conf(steady_line
                            + f"127.0.0.1:{final} stream tcp nowait nobody /bin/echo echo final\n")
            os.kill(monitor, signal.SIGHUP)
            elapsed = time.monotonic() - start
            # The final table is the last file's: its new service answers,
            # the churned one is gone.
            got = harness.wait_until(
                lambda: _try(lambda: tcp_exchange("127.0.0.1", final, timeout=WAIT)), timeout=WAIT)
            self.assertEqual(got, b"final\n", self.logmsg("the last file's table is not in force"))
        finally:
            self.stop_clients(stop, threads)
        self.assertLess(elapsed, 5.0, "the storm itself was too slow to be a storm")
        self.assertTrue(connect_refused("127.0.0.1", churn), "a service of an older file still bound")
        # One more reload of the same file may still be under way (signals
        # sent before the last one can be handled after it was written):
        # retried, as above.
        self.assertEqual(harness.wait_until(
            lambda: _try(lambda: tcp_exchange("127.0.0.1", steady, timeout=WAIT)), timeout=WAIT),
            b"steady\n")
        self.assertTrue(harness.wait_until(self.probe_ok, timeout=WAIT))

        # No crash: the same monitor and the same listener (a reload does not
        # restart it), nothing in the log about a death or a violation.
        self.assertIsNone(self.d.proc.poll(), self.logmsg("inetd died in the storm"))
        self.assertEqual(self.d.listener_pid(), listener, self.logmsg("the listener was replaced"))
        self.assertNotRegex(self.d.log(), r"violation|killed by signal|listener \[\d+\] exited")
        reloads = len(re.findall(r"SIGHUP: reloading", self.d.log()))
        self.assertGreaterEqual(reloads, 2, self.logmsg("hardly any reload ran"))
        self.assertTrue(results, "no client connection was made during the storm")
        errors = [r for r in results if isinstance(r, Exception)]
        self.assertEqual(errors, [], f"{len(results)} connections: errors")

        # No fd leak: back to the counts from before the storm (same number
        # of services: steady, churn/final, the probe), once the last
        # connections are done.
        self.assertTrue(harness.wait_until(lambda: not self.d.service_pids(), timeout=WAIT))
        self.assertEqual(self.settled_fds(monitor, mon_fds), mon_fds,
                         f"monitor fds: before {mon_targets}, after {fd_targets(monitor)}")
        self.assertEqual(self.settled_fds(listener, lst_fds), lst_fds,
                         f"listener fds: before {lst_targets}, after {fd_targets(listener)}")

    def test_connections_during_reloads_are_served(self):
        port = self.d.port()
        line = f"127.0.0.1:{port} stream tcp nowait nobody /bin/echo echo served\n"
        self.d.start(line, args=ARGS)
        stop, results, threads = self.start_clients(port, 4)
        try:
            for _ in range(self.SIGNALS):
                self.write_conf(line)
                self.d.kill(signal.SIGHUP)
                time.sleep(0.01)
            time.sleep(0.5)
        finally:
            self.stop_clients(stop, threads)
        bad = [r for r in results if r != b"served\n"]
        stale = len(re.findall(r"stale generation", self.d.log()))
        self.assertEqual(len(bad), 0,
                         f"{len(bad)} of {len(results)} connections not served "
                         f"({stale} 'stale generation' refusals)")


class ListenerDeathTest(ReloadBase):

    N = 20

    def test_backlog_served_by_new_listener(self):
        port = self.d.port()
        self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody /bin/echo echo served\n", args=ARGS)
        old = self.d.listener_pid()
        self.assertIsNotNone(old)
        os.kill(old, signal.SIGKILL)
        # Dead (not merely signalled) before the first connection: none of
        # them can be accepted by the dying listener.
        self.assertTrue(harness.wait_until(lambda: not harness.alive(old), timeout=WAIT))
        conns = []
        for _ in range(self.N):
            s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
            self.addCleanup(s.close)
            conns.append(s)
        for i, s in enumerate(conns):
            self.assertEqual(recv_line(s), b"served\n",
                             self.logmsg(f"queued connection {i} lost across the listener's restart"))
        new = self.d.listener_pid()
        self.assertTrue(new and new != old, self.logmsg("no new listener"))
        self.assertIsNotNone(self.d.wait_log(rf"listener \[{old}\] killed by signal 9"))
        self.assertIsNone(self.d.proc.poll())

    def test_listener_killed_under_load(self):
        """Clients connect all the time while the listener is killed twice:
        every connection is answered, none refused or cut."""
        port = self.d.port()
        self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody /bin/echo echo served\n", args=ARGS)
        stop, results, threads = self.start_clients(port, 3)
        try:
            seen = set()
            for _ in range(2):
                time.sleep(0.3)
                old = self.d.listener_pid()
                self.assertIsNotNone(old)
                seen.add(old)
                os.kill(old, signal.SIGKILL)
                self.assertTrue(harness.wait_until(
                    lambda: (lambda p: p and p not in seen)(self.d.listener_pid()), timeout=WAIT),
                    self.logmsg("no new listener"))
            time.sleep(0.5)
        finally:
            self.stop_clients(stop, threads)
        errors = [r for r in results if isinstance(r, Exception)]
        self.assertEqual(errors, [], self.logmsg("connections refused or reset"))
        # A connection the dying listener had accepted but not yet handed
        # over is lost with it (it held the only copy): at most a few.
        lost = [r for r in results if r != b"served\n" and not isinstance(r, Exception)]
        self.assertLessEqual(len(lost), 6, f"{len(lost)} of {len(results)} connections lost")
        self.assertGreater(len(results), 10)


class CheckOnlyTest(ReloadBase):

    def check(self, conf, extra=()):
        """Runs inetd -t; (status, stdout, stderr). Bounded."""
        proc = subprocess.run([self.d.binary, "-t", "-u", "nobody", "-p", self.d.pidfile]
                              + list(extra) + [conf],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT)
        return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")

    def assert_nothing_started(self):
        me = os.getpid()
        left = [p for p, pp in harness.parent_map().items()
                if pp == me and harness.alive(p) and harness.proc_comm(p).startswith("inetd")]
        self.assertEqual(left, [], "inetd -t left a process behind")
        self.assertFalse(os.path.exists(self.d.pidfile), "inetd -t wrote a pidfile")

    def test_good_file(self):
        p1, p2, busy = self.d.port(), self.d.port(), self.d.port()
        group = harness.grp.getgrgid(harness.user_ids("nobody")[1]).gr_name
        sock_path = self.d.path("svc.sock")
        conf = self.d.write("good.conf", (
            "# a good file\n"
            f"127.0.0.1:{p1} stream tcp nowait nobody /bin/echo echo one\n"
            f"127.0.0.1:{p2} dgram udp wait nobody:{group} /bin/true true\n"
            f"127.0.0.1:{busy} stream tcp nowait nobody /bin/echo echo busy\n"
            f"{sock_path} stream unix nowait nobody /bin/echo echo unix\n"
            "echo stream tcp nowait root internal\n"))
        # Someone else holds one of the ports: a check that binds nothing
        # does not notice.
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", busy))
            holder.listen()
            rc, out, err = self.check(conf)
        self.assertEqual(rc, 0, f"stdout: {out}\nstderr: {err}")
        self.assertEqual(err, "")
        self.assertIn("5 services, 0 errors", out)
        # Nothing bound or created, nothing left running.
        self.assertTrue(harness.port_free(p1) and harness.port_free(p2))
        self.assertFalse(os.path.exists(sock_path), "inetd -t created a unix socket")
        self.assert_nothing_started()

    def test_broken_file(self):
        good, bad = self.d.port(), self.d.port()
        conf = self.d.write("broken.conf", (
            "# line 1\n"
            f"127.0.0.1:{good} stream tcp nowait nobody /bin/echo echo ok\n"        # 2
            f"127.0.0.1:{bad} stream tcp nowait nosuchuser_it /bin/echo echo x\n"   # 3
            "\n"                                                                    # 4
            f"127.0.0.1:{bad} stream tcp nowait nobody:nosuchgroup_it /bin/echo e\n"  # 5
            "nosuchservice-it stream tcp nowait nobody /bin/echo echo x\n"          # 6
            f"127.0.0.1:{bad} streem tcp nowait nobody /bin/echo echo x\n"          # 7
            f"127.0.0.1:{bad} stream tcpx nowait nobody /bin/echo echo x\n"         # 8
            f"127.0.0.1:{bad} stream tcp nowait nobody /nonexistent/prog prog\n"    # 9
            f"127.0.0.1:{bad} stream tcp sometimes nobody /bin/echo echo x\n"       # 10
            f"127.0.0.1:{good} stream tcp nowait nobody /bin/echo echo again\n"))   # 11: same socket as 2
        rc, out, err = self.check(conf)
        self.assertEqual(rc, 1, f"stdout: {out}\nstderr: {err}")
        for line in (3, 5, 6, 7, 8, 9, 10, 11):
            self.assertRegex(err, re.escape(f"{conf}:{line}: "),
                             f"no error for line {line} on stderr:\n{err}")
        for line in (1, 2, 4):
            self.assertNotIn(f"{conf}:{line}:", err)
        self.assertTrue(harness.port_free(good) and harness.port_free(bad))
        self.assert_nothing_started()

    def test_unknown_user_and_unreadable_file(self):
        conf = self.d.write("good.conf", "")
        proc = subprocess.run([self.d.binary, "-t", "-u", "nosuchuser_it", conf],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT)
        self.assertEqual(proc.returncode, 1, proc)
        self.assertIn(b"nosuchuser_it", proc.stderr)
        rc, out, err = self.check(self.d.path("missing.conf"))
        self.assertEqual(rc, 1, f"stdout: {out}\nstderr: {err}")
        self.assertIn(self.d.path("missing.conf"), err)
        self.assert_nothing_started()

    def test_check_does_not_disturb_running_daemon(self):
        """-t with the running daemon's own pidfile and ports: it neither
        trips over the lock nor the bound sockets, nor removes anything."""
        port = self.d.port()
        self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody /bin/echo echo running\n")
        rc, out, err = self.check(self.d.conf_path)
        self.assertEqual(rc, 0, f"stdout: {out}\nstderr: {err}")
        with open(self.d.pidfile) as f:
            self.assertEqual(f.read().strip(), str(self.d.pid))
        self.assertEqual(tcp_exchange("127.0.0.1", port, timeout=WAIT), b"running\n")


class StatusTest(ReloadBase):

    def test_sigusr1_status_lines(self):
        nowait, dgram = self.d.port(), self.d.port()
        self.d.start(f"127.0.0.1:{nowait} stream tcp nowait nobody /bin/echo echo hi\n"
                     f"127.0.0.1:{dgram} dgram udp wait nobody /bin/true true\n"
                     "daytime stream tcp nowait root internal\n", args=ARGS)
        for _ in range(2):
            self.assertEqual(tcp_exchange("127.0.0.1", nowait, timeout=WAIT), b"hi\n")
        self.assertTrue(harness.wait_until(lambda: not self.d.service_pids(), timeout=WAIT))
        before = len(self.d.log())
        self.d.kill(signal.SIGUSR1)
        probe = self.d.ready_port
        # The monitor: a header, then one line per service, and the listener
        # one line per service with its own counts.
        monitor_rx = [
            r"status: generation 1, 0 children, listener \[\d+\] running",
            rf"status: {nowait}/tcp: children 0/0, spawned 2, refused 0",
            rf"status: {dgram}/udp: children 0/1, spawned 0, refused 0",
            r"status: daytime/tcp: children 0/0, spawned 0, refused 0",
            rf"status: {probe}/tcp: children 0/0, spawned 1, refused 0",
        ]
        listener_rx = [
            rf"status: {nowait}/tcp: polling, running 0, accepted 2\b",
            rf"status: {dgram}/udp: polling, running 0, accepted 0\b",
            r"status: daytime/tcp: polling, running 0, accepted 0\b",
            rf"status: {probe}/tcp: polling, running 0, accepted 1\b",
        ]
        for rx in monitor_rx + listener_rx:
            self.assertIsNotNone(
                harness.wait_until(lambda: re.search(rx, self.d.log()[before:]), timeout=WAIT),
                self.logmsg(f"no status line {rx!r}"))
        # Exactly one line per service from each side.
        status = re.findall(r"status: (\S+): ", self.d.log()[before:])
        for label in (f"{nowait}/tcp", f"{dgram}/udp", "daytime/tcp", f"{probe}/tcp"):
            self.assertEqual(status.count(label), 2, status)
        # A status dump changes nothing.
        self.assertIsNone(self.d.proc.poll())
        self.assertEqual(tcp_exchange("127.0.0.1", nowait, timeout=WAIT), b"hi\n")


if __name__ == "__main__":
    unittest.main()
