"""Deployment (issue 7): `meson install --destdir`, the installed systemd
unit under `systemd-analyze verify`, and the installed SysV init script
driving the installed daemon.

The build directory is the one that holds $INETD. The installation goes to
a fresh DESTDIR per test class; the real prefix is checked to be untouched.

The installed monitor looks for inetd-listener beside itself, then at the
compiled-in libexec path (PREFIX/libexec/inetd-listener, outside DESTDIR).
To run the installed pair without writing to the real prefix, the SysV test
copies the two installed binaries, as installed (root-owned, same modes),
into one directory of the test's own, and points the installed script at
that copy with INETD_DAEMON, one of the overrides the script documents.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

import harness
from harness import InetdTestCase, connect_refused, tcp_exchange

WAIT = 10.0


def build_dir():
    """The meson build directory of $INETD, or None."""
    binary = os.environ.get("INETD", "")
    if not binary:
        return None
    b = os.path.dirname(os.path.abspath(binary))
    if os.path.exists(os.path.join(b, "meson-info", "intro-buildoptions.json")):
        return b
    return None


def build_options(build):
    with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
        return {o["name"]: o["value"] for o in json.load(f)}


class Installed:
    """One `meson install --destdir` of the build directory."""

    def __init__(self, build):
        self.build = build
        self.opts = build_options(build)
        self.prefix = self.opts["prefix"]
        self.root = tempfile.mkdtemp(prefix="inetd-it-destdir-")
        os.chmod(self.root, 0o755)

    def real(self, *parts):
        """An absolute path on the target system (under the prefix)."""
        out = self.prefix
        for p in parts:
            out = os.path.join(out, p)
        return out

    def staged(self, real_path):
        """The same path under DESTDIR."""
        return self.root + real_path

    def expected(self):
        """Real paths that the install must create."""
        o = self.opts
        sysconf = self.real(o["sysconfdir"])
        examples = self.real(o["datadir"], "inetd", "examples")
        man = self.real(o["mandir"])
        return {
            "inetd": self.real(o["sbindir"], "inetd"),
            "listener": self.real(o["libexecdir"], "inetd-listener"),
            "man8": os.path.join(man, "man8", "inetd.8"),
            "man5": os.path.join(man, "man5", "inetd.conf.5"),
            "unit": self.real("lib", "systemd", "system", "inetd.service"),
            "sysusers": self.real("lib", "sysusers.d", "inetd.conf"),
            "initd": os.path.join(sysconf, "init.d", "inetd"),
            "conf": os.path.join(sysconf, "inetd.conf"),
            "hosts.allow": os.path.join(sysconf, "hosts.allow"),
            "hosts.deny": os.path.join(sysconf, "hosts.deny"),
            "default": os.path.join(sysconf, "default", "inetd"),
            "ex.conf": os.path.join(examples, "inetd.conf"),
            "ex.hosts.allow": os.path.join(examples, "hosts.allow"),
            "ex.hosts.deny": os.path.join(examples, "hosts.deny"),
            "ex.default": os.path.join(examples, "default.inetd"),
            "ex.rc.d": os.path.join(examples, "rc.d.inetd"),
        }

    def snapshot(self):
        """lstat facts of every expected real path (outside DESTDIR)."""
        out = {}
        for p in self.expected().values():
            try:
                st = os.lstat(p)
                out[p] = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                out[p] = None
        return out

    def install(self):
        meson = shutil.which("meson") or harness.find_tool("meson")
        if meson is None:
            raise unittest.SkipTest("meson is not installed")
        self.before = self.snapshot()
        proc = subprocess.run([meson, "install", "-C", self.build, "--destdir", self.root,
                               "--no-rebuild"],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        self.output = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        self.returncode = proc.returncode
        self.after = self.snapshot()
        self.files = set()
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in filenames:
                self.files.add(os.path.join(dirpath, name)[len(self.root):])

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


class DeployCase(InetdTestCase):
    """One installation per class, shared by its tests (read-only)."""

    inst = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        build = build_dir()
        if build is None:
            raise unittest.SkipTest("$INETD is not in a meson build directory")
        cls.inst = Installed(build)
        try:
            cls.inst.install()
        except BaseException:
            cls.inst.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.inst is not None:
            cls.inst.cleanup()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.assertEqual(self.inst.returncode, 0, self.inst.output)

    def staged(self, key):
        return self.inst.staged(self.inst.expected()[key])


class InstallTest(DeployCase):

    def test_installed_files(self):
        inst = self.inst
        expected = inst.expected()
        missing = {k: p for k, p in expected.items() if p not in inst.files}
        self.assertEqual(missing, {}, f"not installed; installed: {sorted(inst.files)}\n{inst.output}")
        # Nothing but inetd's own files: no test, fuzz or bench programs.
        allowed = tuple(os.path.dirname(p) + "/" for p in expected.values())
        stray = sorted(p for p in inst.files if not p.startswith(allowed))
        self.assertEqual(stray, [], "unexpected files installed")
        # Every file meson and the install script name went into DESTDIR.
        targets = re.findall(r"^Installing .* to (\S+)\s*$", inst.output, re.M)
        self.assertGreaterEqual(len(targets), len(expected) - 4, inst.output)
        outside = [t for t in targets if not t.startswith(inst.root + "/")]
        self.assertEqual(outside, [], inst.output)
        # Nothing appeared or changed at the real paths.
        self.assertEqual(inst.after, inst.before, "the install wrote outside DESTDIR")

    def test_modes_and_owners(self):
        def check(key, mode):
            st = os.lstat(self.staged(key))
            self.assertTrue(stat.S_ISREG(st.st_mode), key)
            self.assertEqual(stat.S_IMODE(st.st_mode), mode, f"{key}: {oct(st.st_mode)}")
            self.assertEqual(st.st_uid, 0, key)
        # The monitor refuses a listener that others could replace.
        for key in ("inetd", "listener", "initd", "ex.rc.d"):
            check(key, 0o755)
        for key in ("man8", "man5", "unit", "sysusers", "conf", "hosts.allow", "hosts.deny",
                    "default", "ex.conf", "ex.default"):
            check(key, 0o644)

    def test_substituted_paths(self):
        sbin_inetd = self.inst.expected()["inetd"]
        for key in ("unit", "initd", "ex.rc.d"):
            with open(self.staged(key)) as f:
                text = f.read()
            self.assertNotRegex(text, r"@[A-Z_]+@", f"{key}: unsubstituted variable")
            # rc.d writes it as .../sbin/${name}.
            self.assertIn(os.path.dirname(sbin_inetd) + "/", text, key)
        with open(self.staged("unit")) as f:
            unit = f.read()
        self.assertRegex(unit, rf"(?m)^ExecStart={re.escape(sbin_inetd)} -D \$INETD_FLAGS$")
        self.assertRegex(unit, r"(?m)^Type=notify$")
        self.assertRegex(unit, r"(?m)^EnvironmentFile=-/etc/default/inetd$")
        with open(self.staged("initd")) as f:
            self.assertRegex(f.read(), rf"(?m)^DAEMON=\$\{{INETD_DAEMON:-{re.escape(sbin_inetd)}\}}$")
        with open(self.staged("sysusers")) as f:
            self.assertRegex(f.read(), r"(?m)^u\s+_inetd\s")

    def test_shipped_config_has_no_active_service(self):
        """Every service in the installed inetd.conf is commented out, and
        the installed monitor's -t agrees."""
        path = self.staged("conf")
        with open(path) as f:
            active = [ln for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
        self.assertEqual(active, [])
        proc = subprocess.run([self.staged("inetd"), "-t", "-u", "nobody", path],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT)
        self.assertEqual(proc.returncode, 0, proc)
        self.assertIn(b"0 services, 0 errors", proc.stdout)


class SystemdUnitTest(DeployCase):

    def test_unit_reload_checks_config_first(self):
        with open(self.staged("unit")) as f:
            reload = re.findall(r"(?m)^ExecReload=(.*)$", f.read())
        sbin_inetd = self.inst.expected()["inetd"]
        self.assertGreaterEqual(len(reload), 2, reload)
        self.assertRegex(reload[0], rf"^{re.escape(sbin_inetd)} .*-t\b.*\$INETD_FLAGS", reload)
        self.assertRegex(reload[-1], r"kill -HUP \$MAINPID", reload)

    def test_systemd_analyze_verify(self):
        """`systemd-analyze verify` on the installed unit. The unit names the
        installed inetd path, which exists only under DESTDIR here (verify
        checks that each Exec*= program is executable; --root= does not
        help, it then wants a whole system under the root), so a copy with
        that path rewritten to DESTDIR is verified; MANPATH is the
        staged mandir, so Documentation=man:... is checked against the
        installed pages (and not the host's). verify exits 0 on warnings
        (unknown keys, bad values): its output must be empty too."""
        analyze = harness.find_tool("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze is not installed")
        units = self.d.mkdir("units")
        env = dict(os.environ, MANPATH=self.inst.staged(
            os.path.join(self.inst.prefix, self.inst.opts["mandir"])), SYSTEMD_LOG_COLOR="0",
            SYSTEMD_PAGER="")
        # Can it run here at all? A trivial good unit must verify silently.
        sanity = self.d.write("units/inetd-it-sanity.service",
                              "[Unit]\nDescription=sanity\n[Service]\nExecStart=/bin/true\n")
        proc = subprocess.run([analyze, "verify", sanity], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60)
        if proc.returncode != 0 or proc.stdout or proc.stderr:
            self.skipTest(f"systemd-analyze verify does not work here: {proc}")

        with open(self.staged("unit")) as f:
            text = f.read()
        sbin_inetd = self.inst.expected()["inetd"]
        self.assertIn(f"ExecStart={sbin_inetd} ", text)
        # Every command line that names the installed inetd (ExecStart=, and
        # ExecReload= should it check the file first) gets the staged path.
        text = text.replace(sbin_inetd, self.staged("inetd"))
        unit = self.d.write("units/inetd.service", text)
        proc = subprocess.run([analyze, "verify", unit], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60)
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        self.assertEqual(proc.returncode, 0, out)
        self.assertEqual(out.strip(), "", "systemd-analyze verify has warnings")

        # The check has teeth: a unit whose program is missing fails.
        bad = self.d.write("units/inetd-it-bad.service",
                           text.replace(self.staged("inetd"), self.d.path("no-such-inetd")))
        proc = subprocess.run([analyze, "verify", bad], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60)
        self.assertNotEqual(proc.returncode, 0, proc)


class SysvScriptTest(DeployCase):

    def setUp(self):
        super().setUp()
        if not os.access("/bin/sh", os.X_OK):
            self.skipTest("no /bin/sh")
        # The installed pair, side by side (see the module's docstring).
        bindir = self.d.mkdir("installed-bin")
        for key in ("inetd", "listener"):
            src = self.staged(key)
            dst = os.path.join(bindir, os.path.basename(src))
            shutil.copy2(src, dst)
            os.chown(dst, 0, 0)
        self.daemon = os.path.join(bindir, "inetd")
        self.script = self.staged("initd")
        self.pidfile = self.d.path("run", "inetd.pid")
        self.d.mkdir("run")
        self.defaults = self.d.path("default.inetd")
        self.port = self.d.port()
        self.added = self.d.port()
        self.conf = self.d.path("inetd.conf")
        self.write_conf(f"127.0.0.1:{self.port} stream tcp nowait nobody /bin/echo echo one\n")
        # As an administrator would: INETD_FLAGS in the defaults file,
        # loopback high ports, -u nobody (no _inetd user in a test box).
        self.d.write("default.inetd", f'INETD_FLAGS="-u nobody -R 0 {self.conf}"\n')
        self.env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "INETD_DAEMON": self.daemon,
            "INETD_PIDFILE": self.pidfile,
            "INETD_DEFAULTS": self.defaults,
            "INETD_TIMEOUT": "10",
            "SYSTEMCTL_SKIP_REDIRECT": "1",
            "_SYSTEMCTL_SKIP_REDIRECT": "1",
        }
        self.addCleanup(self.kill_daemon)

    def write_conf(self, text):
        tmp = self.d.write("inetd.conf.new", text)
        os.replace(tmp, self.conf)

    def kill_daemon(self):
        pid = self.read_pid()
        if pid and harness.alive(pid) and harness.proc_cmdline(pid)[:1] == [self.daemon]:
            harness.kill_and_reap([pid])

    def read_pid(self):
        try:
            with open(self.pidfile) as f:
                text = f.read().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def run_script(self, action, reap=None, timeout=30.0):
        """Runs the installed script; (status, output). The daemon it starts
        detaches and is re-parented to this process (a subreaper), so its
        zombie is reaped here while the script waits for it to go, as init
        would. Output goes to a file: the detached daemon keeps a copy of
        its caller's stderr (see test_supervision.py)."""
        out_path = self.d.path(f"script-{action}.out")
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(["/bin/sh", self.script, action], env=self.env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True)
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if reap:
                    harness.reap(reap)
                time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait(WAIT)
                self.fail(f"{self.script} {action} did not finish in {timeout} s")
        if reap:
            harness.reap(reap)
        return proc.returncode, harness.read_bytes(out_path).decode(errors="replace")

    def answer(self, port):
        try:
            return tcp_exchange("127.0.0.1", port, timeout=3)
        except OSError:
            return None

    def start(self):
        rc, out = self.run_script("start")
        self.assertEqual(rc, 0, out)
        pid = self.read_pid()
        self.assertIsNotNone(pid, f"no pidfile after start: {out}")
        self.d.extra_pids.append(pid)
        self.assertTrue(harness.alive(pid))
        self.assertEqual(os.readlink(f"/proc/{pid}/exe"), self.daemon)
        return pid

    def test_start_status_reload_restart_stop(self):
        self.assertEqual(self.run_script("status")[0], 3)
        pid = self.start()
        # The flags from the defaults file are the daemon's.
        cmdline = harness.proc_cmdline(pid)
        self.assertEqual(cmdline[-5:], ["-u", "nobody", "-R", "0", self.conf], cmdline)
        self.assertIn(self.pidfile, cmdline)
        got = harness.wait_until(lambda: self.answer(self.port), timeout=WAIT)
        self.assertEqual(got, b"one\n")
        rc, out = self.run_script("status")
        self.assertEqual(rc, 0, out)
        self.assertIn(str(pid), out)
        # start again: a no-op, the same daemon.
        self.assertEqual(self.run_script("start")[0], 0)
        self.assertEqual(self.read_pid(), pid)

        # reload: the changed file takes effect in the same process.
        self.write_conf(f"127.0.0.1:{self.port} stream tcp nowait nobody /bin/echo echo two\n"
                        f"127.0.0.1:{self.added} stream tcp nowait nobody /bin/echo echo added\n")
        rc, out = self.run_script("reload")
        self.assertEqual(rc, 0, out)
        got = harness.wait_until(lambda: self.answer(self.added), timeout=WAIT)
        self.assertEqual(got, b"added\n", "reload did not take effect")
        self.assertEqual(self.answer(self.port), b"two\n")
        self.assertEqual(self.read_pid(), pid)

        # restart: a new daemon on the same file.
        rc, out = self.run_script("restart", reap=pid)
        self.assertEqual(rc, 0, out)
        self.assertTrue(harness.wait_until(lambda: (harness.reap(pid), not harness.alive(pid))[1],
                                           timeout=WAIT), "the old daemon survived a restart")
        new = self.read_pid()
        self.assertIsNotNone(new)
        self.d.extra_pids.append(new)
        self.assertNotEqual(new, pid)
        self.assertEqual(harness.wait_until(lambda: self.answer(self.port), timeout=WAIT), b"two\n")

        # stop: the process is gone, the pidfile removed, the port free.
        rc, out = self.run_script("stop", reap=new)
        self.assertEqual(rc, 0, out)
        # The script waits for the pidfile to go, which inetd removes just
        # before it exits (a sanitizer build's exit checks take a moment).
        self.assertTrue(harness.wait_until(lambda: (harness.reap(new), not harness.alive(new))[1],
                                           timeout=WAIT), "the daemon survived stop")
        self.assertFalse(os.path.exists(self.pidfile), "pidfile left after stop")
        self.assertTrue(connect_refused("127.0.0.1", self.port))
        rc, out = self.run_script("status")
        self.assertEqual(rc, 3, out)
        # stop again: nothing to do, success (LSB).
        self.assertEqual(self.run_script("stop")[0], 0)
        # reload with nothing running: LSB's 7.
        self.assertEqual(self.run_script("reload")[0], 7)

    def test_start_failure_is_reported(self):
        """A daemon that cannot start (unknown -u user) fails the script,
        and leaves no pidfile."""
        self.d.write("default.inetd", f'INETD_FLAGS="-u nosuchuser_it {self.conf}"\n')
        rc, out = self.run_script("start")
        self.assertNotEqual(rc, 0, out)
        self.assertFalse(os.path.exists(self.pidfile))
        self.assertEqual(self.run_script("status")[0], 3)

    def test_reload_refuses_broken_config(self):
        pid = self.start()
        self.assertEqual(harness.wait_until(lambda: self.answer(self.port), timeout=WAIT), b"one\n")
        self.write_conf(f"127.0.0.1:{self.port} stream tcp nowait nobody /bin/echo echo two\n"
                        f"127.0.0.1:{self.added} stream tcp nowait nosuchuser_it /bin/echo echo x\n")
        rc, out = self.run_script("reload")
        # Give a signalled daemon the time to reload, then look.
        time.sleep(1.0)
        answer = self.answer(self.port)
        self.assertEqual(self.read_pid(), pid)
        self.assertNotEqual(rc, 0, f"reload of a broken file succeeded: {out}")
        self.assertEqual(answer, b"one\n", "the daemon was signalled with a broken file")
        self.assertIn("nosuchuser_it", out)


if __name__ == "__main__":
    unittest.main()
