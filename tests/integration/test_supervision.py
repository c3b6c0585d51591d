"""Running under a supervisor (issue 6): sd_notify messages, socket
activation by systemd-socket-activate, the pidfile in the modes that
test_lifecycle.py does not cover (daemonized, -D, -d without -p), and the
listener's end when the monitor dies."""

import os
import signal
import socket
import subprocess
import time
import unittest

import harness
from harness import InetdTestCase, connect_refused, tcp_exchange

WAIT = 10.0


def start_with(d, conf_text, args=(), env=None, prefix=(), pidfile=True, probe=True):
    """Inetd.start with an environment and a command prefix (the harness's
    start has neither): writes the file with the readiness probe appended,
    starts prefix + the daemon with its log in d.log_path, and waits for
    the probe. d.cleanup() stops the process as it does for d.start."""
    if probe:
        d.ready_port = d.port()
        conf_text = (conf_text.rstrip("\n") + "\n\n"
                     f"127.0.0.1:{d.ready_port} stream tcp nowait nobody "
                     f"/bin/echo echo {harness.READY_TEXT}\n")
    d.write("inetd.conf", conf_text)
    if d._log_file:
        d._log_file.close()
    d._log_file = open(d.log_path, "ab")
    full_env = dict(os.environ)
    full_env.update(env or {})
    d.proc = subprocess.Popen(list(prefix) + d.command(args, pidfile=pidfile),
                              stdin=subprocess.DEVNULL, stdout=d._log_file,
                              stderr=d._log_file, env=full_env, start_new_session=True)
    return d.proc


def _try(fn):
    try:
        return fn()
    except OSError:
        return None


def probe_ok(port):
    try:
        return harness.READY_TEXT.encode() in tcp_exchange("127.0.0.1", port, timeout=2)
    except OSError:
        return False


class NotifyTest(InetdTestCase):

    def notify_socket(self, abstract=False):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        if abstract:
            name = f"inetd-it-notify-{os.getpid()}-{id(self)}"
            s.bind("\0" + name)
            return s, "@" + name
        path = self.d.path("notify.sock")
        s.bind(path)
        return s, path

    def recv(self, s, timeout=WAIT):
        s.settimeout(timeout)
        try:
            return s.recv(4096).decode()
        except socket.timeout:
            return None

    def assert_quiet(self, s):
        self.assertIsNone(self.recv(s, timeout=0.3), "an unexpected notification")

    def test_notify_sequence(self):
        sock, name = self.notify_socket()
        port = self.d.port()
        start_with(self.d, f"127.0.0.1:{port} stream tcp nowait nobody /usr/bin/env env\n",
                   env={"NOTIFY_SOCKET": name})
        self.d.wait_ready()
        self.assertEqual(self.recv(sock), "READY=1", self.logmsg("no READY=1 after the start"))
        self.assert_quiet(sock)

        # Services do not inherit the supervisor's socket.
        env = tcp_exchange("127.0.0.1", port, timeout=WAIT).decode()
        self.assertIn("PATH=", env, self.logmsg("the env service did not run"))
        self.assertNotIn("NOTIFY_SOCKET", env)
        self.assertNotIn(name, env)

        # A reload: RELOADING=1 with the time it started, then READY=1.
        before = time.monotonic_ns() // 1000
        self.d.kill(signal.SIGHUP)
        reloading = self.recv(sock)
        after = time.monotonic_ns() // 1000
        self.assertIsNotNone(reloading, self.logmsg("no RELOADING=1 after SIGHUP"))
        lines = reloading.split("\n")
        self.assertEqual(lines[0], "RELOADING=1", reloading)
        usec = [ln for ln in lines if ln.startswith("MONOTONIC_USEC=")]
        self.assertEqual(len(usec), 1, reloading)
        stamp = int(usec[0].split("=", 1)[1])
        self.assertTrue(before <= stamp <= after, f"MONOTONIC_USEC {stamp} not in [{before}, {after}]")
        self.assertEqual(self.recv(sock), "READY=1", self.logmsg("no READY=1 after the reload"))
        self.assert_quiet(sock)
        self.assertTrue(harness.wait_until(lambda: probe_ok(self.d.ready_port), timeout=WAIT))

        # SIGTERM: STOPPING=1, then the exit.
        self.d.kill(signal.SIGTERM)
        self.assertEqual(self.recv(sock), "STOPPING=1", self.logmsg("no STOPPING=1"))
        self.assertEqual(self.d.proc.wait(WAIT), 0)
        self.assert_quiet(sock)

    def test_notify_abstract_socket(self):
        sock, name = self.notify_socket(abstract=True)
        start_with(self.d, "", env={"NOTIFY_SOCKET": name})
        self.d.wait_ready()
        self.assertEqual(self.recv(sock), "READY=1", self.logmsg())
        self.d.kill(signal.SIGTERM)
        self.assertEqual(self.recv(sock), "STOPPING=1", self.logmsg())
        self.assertEqual(self.d.proc.wait(WAIT), 0)


class SocketActivationTest(InetdTestCase):

    def test_systemd_socket_activate(self):
        activate = harness.find_tool("systemd-socket-activate")
        if activate is None:
            self.skipTest("systemd-socket-activate is not installed (apt-get install systemd)")
        port, unused = self.d.port(), self.d.port()
        svc = self.d.script("activated.sh", "#!/bin/sh\necho activated\nexec env\n")
        # The probe port is not passed: inetd binds it itself.
        start_with(self.d, f"127.0.0.1:{port} stream tcp nowait nobody {svc} activated.sh\n",
                   args=["-R", "0"], pidfile=False,
                   prefix=[activate, "-l", f"127.0.0.1:{port}", "-l", f"127.0.0.1:{unused}"])
        # systemd-socket-activate binds both, and execs inetd (same pid) at
        # the first connection, which waits in the backlog meanwhile.
        deadline = time.monotonic() + WAIT
        data = None
        while time.monotonic() < deadline:
            if self.d.proc.poll() is not None:
                self.fail(self.logmsg(f"exited with {self.d.proc.returncode}"))
            try:
                data = tcp_exchange("127.0.0.1", port, timeout=WAIT)
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        self.assertIsNotNone(data, self.logmsg("the passed port was never bound"))
        self.assertTrue(data.startswith(b"activated\n"), self.logmsg(f"first connection: {data!r}"))
        self.assertNotIn(b"LISTEN_", data, "a service inherited the activation variables")
        self.d.wait_ready()
        self.assertEqual(harness.proc_comm(self.d.pid), "inetd")
        self.assertRegex(self.d.log(),
                         rf"{port}/tcp: using the socket passed by the init system")
        # The passed socket nobody asked for is closed.
        self.assertRegex(self.d.log(), r"passed socket \(fd \d+\) matches no service: closed")
        self.assertTrue(connect_refused("127.0.0.1", unused), "the unused passed socket is open")
        # Only one socket on the port: inetd did not bind a second one.
        self.assertEqual(len([ln for ln in self.d.log().splitlines()
                              if "using the socket passed" in ln]), 1)
        # A reload keeps the passed socket of the unchanged service.
        self.d.kill(signal.SIGHUP)
        self.assertIsNotNone(self.d.wait_log(r"services, generation 2"), self.logmsg())
        # Retried: a connection that races the reload may be refused as
        # "stale generation" (test_reload.py).
        got = harness.wait_until(
            lambda: (lambda b: b if b and b.startswith(b"activated\n") else None)(
                _try(lambda: tcp_exchange("127.0.0.1", port, timeout=WAIT))), timeout=WAIT)
        self.assertIsNotNone(got, self.logmsg("the passed socket was lost in the reload"))
        self.assertEqual(self.d.stop(), 0, self.logmsg())
        self.assertTrue(connect_refused("127.0.0.1", port))


class PidfileModesTest(InetdTestCase):
    """The daemonized and -D cases. test_lifecycle.py covers -d -p: the
    pid, the lock refusing a second inetd, removal on SIGTERM/SIGINT."""

    def conf(self):
        self.d.ready_port = self.d.port()
        return self.d.write("inetd.conf", f"127.0.0.1:{self.d.ready_port} stream tcp nowait nobody "
                                          f"/bin/echo echo {harness.READY_TEXT}\n")

    def read_pid(self):
        try:
            with open(self.d.pidfile) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        return int(text) if text.strip().isdigit() else None

    def wait_exit(self, pid):
        """Waits for `pid` (our child once re-parented to us) to go; its exit
        status if we reaped it, else None."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                got, status = os.waitpid(pid, os.WNOHANG)
                if got == pid:
                    return os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                if not harness.alive(pid):
                    return None
            time.sleep(0.05)
        self.fail(f"process {pid} still running")

    def test_daemonized(self):
        conf = self.conf()
        argv = [self.d.binary, "-u", "nobody", "-p", self.d.pidfile, conf]
        # Output to a file, not a pipe: see test_daemon_releases_callers_output.
        with open(self.d.log_path, "ab") as out:
            first = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                   timeout=WAIT)
        self.assertEqual(first.returncode, 0, self.d.log())
        # The pid written is the detached daemon's, not the one that exited.
        pid = harness.wait_until(self.read_pid, timeout=WAIT)
        self.assertIsNotNone(pid, "no pid in the pidfile")
        self.d.extra_pids.append(pid)
        self.assertTrue(harness.alive(pid), "the pidfile names a dead process")
        self.assertEqual(harness.proc_comm(pid), "inetd")
        self.assertTrue(harness.wait_until(lambda: probe_ok(self.d.ready_port), timeout=WAIT),
                        "the daemon does not serve")
        # Detached: a session of its own.
        self.assertEqual(os.getsid(pid), pid)

        # A second daemonizing inetd is refused before it detaches, so its
        # caller sees the status and the message.
        second = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT)
        self.assertNotEqual(second.returncode, 0, second)
        self.assertIn(b"locked", second.stderr)
        self.assertIn(self.d.pidfile.encode(), second.stderr)
        self.assertEqual(self.read_pid(), pid)
        self.assertTrue(probe_ok(self.d.ready_port), "the first daemon stopped serving")

        os.kill(pid, signal.SIGTERM)
        status = self.wait_exit(pid)
        if status is not None:
            self.assertEqual(status, 0)
        self.assertFalse(os.path.exists(self.d.pidfile), "pidfile left behind")
        self.assertTrue(connect_refused("127.0.0.1", self.d.ready_port))

    def test_daemon_releases_callers_output(self):
        conf = self.conf()
        proc = subprocess.Popen([self.d.binary, "-u", "nobody", "-p", self.d.pidfile, conf],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        self.d.proc = proc
        try:
            out, err = proc.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            out = err = None
        finally:
            pid = harness.wait_until(self.read_pid, timeout=WAIT)
            if pid:
                self.d.extra_pids.append(pid)
        self.assertIsNotNone(err, "the daemon holds its caller's stdout/stderr open")
        self.assertEqual(proc.returncode, 0, err)
        self.assertTrue(harness.wait_until(lambda: probe_ok(self.d.ready_port), timeout=WAIT))

    def test_foreground_D(self):
        conf = self.conf()
        self.d.proc = subprocess.Popen([self.d.binary, "-D", "-u", "nobody", "-p", self.d.pidfile, conf],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, start_new_session=True)
        self.assertTrue(harness.wait_until(lambda: probe_ok(self.d.ready_port), timeout=WAIT))
        self.assertIsNone(self.d.proc.poll(), "-D detached")
        self.assertEqual(self.read_pid(), self.d.pid)
        self.assertEqual(self.d.stop(), 0)
        self.assertFalse(os.path.exists(self.d.pidfile), "pidfile left behind")

    def test_debug_without_p_writes_no_pidfile(self):
        default = "/var/run/inetd.pid"
        if os.path.lexists(default):
            self.skipTest(f"{default} exists on this host")

        def remove_if_ours():
            # Only if this test's daemon made it (a bug): leave no trace.
            if os.path.exists(default) and self.d.proc is not None:
                try:
                    with open(default) as f:
                        if f.read().strip() == str(self.d.pid):
                            os.unlink(default)
                except OSError:
                    pass
        self.addCleanup(remove_if_ours)
        start_with(self.d, "", pidfile=False)
        self.d.wait_ready()
        self.assertFalse(os.path.lexists(default), "-d without -p wrote /var/run/inetd.pid")


class MonitorDeathTest(InetdTestCase):

    def test_listener_follows_monitor(self):
        tcp, udp = self.d.port(), self.d.port()
        self.d.start(f"127.0.0.1:{tcp} stream tcp nowait nobody /bin/echo echo hi\n"
                     f"127.0.0.1:{udp} dgram udp wait nobody /bin/true true\n")
        listener = self.d.listener_pid()
        self.assertIsNotNone(listener)
        self.assertEqual(tcp_exchange("127.0.0.1", tcp, timeout=WAIT), b"hi\n")
        self.d.kill(signal.SIGKILL)
        self.d.proc.wait(WAIT)
        # PR_SET_PDEATHSIG (and its channel's EOF): the listener goes too.
        gone = harness.wait_until(lambda: not harness.alive(listener), timeout=WAIT)
        if not gone:
            self.d.extra_pids.append(listener)
        self.assertTrue(gone, "the listener outlived the monitor")
        # Every listening socket is closed with them.
        for port in (tcp, self.d.ready_port):
            self.assertTrue(connect_refused("127.0.0.1", port), f"port {port} still accepts")
        self.assertTrue(harness.port_free(tcp, udp=False))
        self.assertTrue(harness.port_free(udp, tcp=False))


if __name__ == "__main__":
    unittest.main()
