"""Login classes: a service reports its limits (/proc/PID/limits), umask,
nice value and exact environment (/proc/PID/environ), and each is compared
with the class in a login.conf given with -L. Also: the fall-back to
"default", a missing file, malformed classes named by line, SIGHUP, -t."""

import pwd
import re
import signal
import socket
import time

import harness
from harness import InetdTestCase, connect_refused, read_all

# The service is the shell itself: every probe reads /proc/$$ (the shell's
# own entry, as exec'd), from a child, so the shell opens nothing.
PROBE = ("cat /proc/$$/limits; echo --; grep ^Umask: /proc/$$/status; echo --; "
         "cat /proc/$$/stat; echo --; tr '\\0' '\\n' < /proc/$$/environ")

DEFAULT_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"

# /proc/PID/limits row names for login.conf's capabilities.
ROWS = {
    "cputime": "Max cpu time",
    "filesize": "Max file size",
    "datasize": "Max data size",
    "stacksize": "Max stack size",
    "coredumpsize": "Max core file size",
    "memoryuse": "Max resident set",
    "memorylocked": "Max locked memory",
    "maxproc": "Max processes",
    "openfiles": "Max open files",
    "vmemoryuse": "Max address space",
}

# A class with every capability, the limits as (soft, hard) in the units of
# /proc/PID/limits. Each is below what the daemon has, so the test holds
# without CAP_SYS_RESOURCE (raising is test_raising_a_hard_limit).
EVERYTHING = (
    "everything|all|All capabilities:\\\n"
    "\t:cputime=1h:cputime-cur=30m:\\\n"
    "\t:filesize=10m:\\\n"
    "\t:datasize-cur=512m:datasize-max=1g:\\\n"
    "\t:stacksize=4m:stacksize-max=16m:\\\n"
    "\t:coredumpsize-cur=0:coredumpsize-max=1m:\\\n"
    "\t:memoryuse=100m:\\\n"
    "\t:memorylocked=4m:\\\n"
    "\t:maxproc=2000:maxproc-cur=1000:\\\n"
    "\t:openfiles-cur=100:openfiles-max=200:\\\n"
    "\t:vmemoryuse=2g:\\\n"
    "\t:priority=5:\\\n"
    "\t:umask=027:\\\n"
    "\t:path=/usr/local/bin /usr/bin,/bin ~/bin:\\\n"
    "\t:lang=C.UTF-8:charset=UTF-8:timezone=UTC:\\\n"
    "\t:setenv=GREETING=hello world,LIST=\"a,b\",WHO=$:\\\n"
    "\t:passwd_format=sha512:\\\n"
    "\t:tc=default:\n"
)
EVERYTHING_LIMITS = {
    "cputime": (1800, 3600),
    "filesize": (10 << 20, 10 << 20),
    "datasize": (512 << 20, 1 << 30),
    "stacksize": (4 << 20, 16 << 20),
    "coredumpsize": (0, 1 << 20),
    "memoryuse": (100 << 20, 100 << 20),
    "memorylocked": (4 << 20, 4 << 20),
    "maxproc": (1000, 2000),
    "openfiles": (100, 200),
    "vmemoryuse": (2 << 30, 2 << 30),
}
DEFAULT = "default:\\\n\t:umask=022:\\\n\t:coredumpsize=0:\n"


def parse_limits(text):
    """/proc/PID/limits as {row name: (soft, hard)}, None for unlimited."""
    out = {}
    for line in text.splitlines()[1:]:
        m = re.match(r"(.+?)\s{2,}(\S+)\s+(\S+)", line)
        if m:
            soft, hard = (None if v == "unlimited" else int(v) for v in m.group(2, 3))
            out[m.group(1)] = (soft, hard)
    return out


class LoginClassTest(InetdTestCase):

    def login_conf(self, text, name="login.conf"):
        return self.d.write(name, text, 0o644)

    def probe(self, port):
        """Connects, reads the probe's report: (limits, umask, nice, env,
        the client's own port)."""
        deadline = time.monotonic() + 5
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            client_port = s.getsockname()[1]
            s.shutdown(socket.SHUT_WR)
            out = read_all(s, deadline).decode(errors="replace")
        sections = out.split("--\n")
        self.assertEqual(len(sections), 4, self.logmsg(f"service output: {out!r}"))
        limits = parse_limits(sections[0])
        umask = int(sections[1].split()[1], 8)
        stat = sections[2]
        nice = int(stat[stat.rfind(")") + 2:].split()[16])  # field 19
        env = dict(line.split("=", 1) for line in sections[3].splitlines())
        return limits, umask, nice, env, client_port

    def start_probe(self, user_field, login_conf, extra=""):
        port = self.d.port()
        conf = (f"{extra}"
                f"127.0.0.1:{port} stream tcp nowait {user_field} /bin/sh sh -c \"{PROBE}\"\n")
        self.d.start(conf, args=["-L", login_conf])
        return port

    def connection_env(self, port, client_port):
        return {
            "PROTO": "TCP",
            "TCPREMOTEIP": "127.0.0.1", "TCPREMOTEPORT": str(client_port),
            "TCPLOCALIP": "127.0.0.1", "TCPLOCALPORT": str(port),
            "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": str(client_port),
        }

    def test_every_capability(self):
        path = self.login_conf(EVERYTHING + DEFAULT)
        port = self.start_probe("nobody/everything", path)
        limits, umask, nice, env, client_port = self.probe(port)
        for cap, want in EVERYTHING_LIMITS.items():
            self.assertEqual(limits[ROWS[cap]], want, f"{cap}\n{self.logmsg()}")
        self.assertEqual(umask, 0o027)
        self.assertEqual(nice, 5)
        home = pwd.getpwnam("nobody").pw_dir
        want_env = {
            "PATH": f"/usr/local/bin:/usr/bin:/bin:{home}/bin",
            "LANG": "C.UTF-8", "MM_CHARSET": "UTF-8", "TZ": "UTC",
            "GREETING": "hello world", "LIST": "a,b", "WHO": "nobody",
        }
        want_env.update(self.connection_env(port, client_port))
        self.assertEqual(env, want_env)
        self.assertNotIn(f"{self.d.conf_path}:1: login-class", self.d.log())  # no warning

    def test_alias_and_root_user(self):
        path = self.login_conf(EVERYTHING + DEFAULT)
        port = self.start_probe("root/all", path)
        limits, umask, nice, env, _ = self.probe(port)
        self.assertEqual(limits[ROWS["openfiles"]], (100, 200))
        self.assertEqual(env["WHO"], "root")
        self.assertEqual(env["PATH"].split(":")[-1], pwd.getpwnam("root").pw_dir + "/bin")

    def test_raising_a_hard_limit(self):
        """The class is applied while the child is still root: with
        CAP_SYS_RESOURCE a hard limit goes up; without it (a container) the
        monitor warns at load and keeps its own hard limit."""
        path = self.login_conf("daemon:memorylocked=unlimited:openfiles=unlimited:\n" + DEFAULT)
        port = self.start_probe("nobody", path)
        limits = self.probe(port)[0]
        with open(f"/proc/{self.d.proc.pid}/limits") as f:
            own = parse_limits(f.read())
        with open("/proc/sys/fs/nr_open") as f:
            nr_open = int(f.read())
        with open(f"/proc/{self.d.proc.pid}/status") as f:
            can_raise = int(re.search(r"CapEff:\s*(\w+)", f.read()).group(1), 16) >> 24 & 1
        if can_raise:
            self.assertEqual(limits[ROWS["memorylocked"]], (None, None))
            self.assertEqual(limits[ROWS["openfiles"]], (nr_open, nr_open))
        else:
            hard = own[ROWS["memorylocked"]][1]
            self.assertEqual(limits[ROWS["memorylocked"]], (hard, hard))
            self.assertRegex(self.d.log(), re.escape(
                f"memorylocked: kept at inetd's own hard limit {hard} "
                "(raising it takes CAP_SYS_RESOURCE)"))

    def test_default_class_is_daemon_then_default(self):
        path = self.login_conf("daemon:openfiles=64:priority=3:tc=default:\n" + DEFAULT)
        port = self.start_probe("nobody", path)
        limits, umask, nice, env, client_port = self.probe(port)
        self.assertEqual(limits[ROWS["openfiles"]], (64, 64))
        self.assertEqual(limits[ROWS["coredumpsize"]], (0, 0))
        self.assertEqual((umask, nice), (0o022, 3))
        want_env = {"PATH": DEFAULT_PATH}
        want_env.update(self.connection_env(port, client_port))
        self.assertEqual(env, want_env)

    def test_unknown_class_falls_back_to_default(self):
        path = self.login_conf(DEFAULT)
        port = self.start_probe("nobody/nosuchclass", path, extra="# line 1\n")
        limits, umask, _, _, _ = self.probe(port)
        self.assertEqual(limits[ROWS["coredumpsize"]], (0, 0))
        self.assertEqual(umask, 0o022)
        self.assertRegex(self.d.log(), re.escape(
            f"{self.d.conf_path}:2: login-class: class 'nosuchclass' not in {path}, using 'default'"))

    def test_missing_file_means_no_class(self):
        port = self.start_probe("nobody", self.d.path("no-login.conf"))
        limits, _, nice, env, client_port = self.probe(port)
        want_env = {"PATH": DEFAULT_PATH}
        want_env.update(self.connection_env(port, client_port))
        self.assertEqual(env, want_env)
        self.assertEqual(nice, 0)  # setusercontext's default priority
        # Limits as the daemon has them: its own.
        with open(f"/proc/{self.d.proc.pid}/limits") as f:
            self.assertEqual(limits, parse_limits(f.read()))

    def test_malformed_class_skips_the_entry(self):
        path = self.login_conf("# comment\n\nbad:\\\n\t:openfiles=10k:\n" + DEFAULT)
        good, bad = self.d.port(), self.d.port()
        conf = (f"127.0.0.1:{bad} stream tcp nowait nobody/bad /bin/echo echo bad\n"
                f"127.0.0.1:{good} stream tcp nowait nobody /bin/echo echo good\n")
        self.d.start(conf, args=["-L", path])
        self.assertEqual(harness.tcp_exchange("127.0.0.1", good), b"good\n")
        self.assertTrue(connect_refused("127.0.0.1", bad), "the entry of a bad class is bound")
        self.assertRegex(self.d.log(), re.escape(
            f"{self.d.conf_path}:1: login-class: {path}:3: class 'bad': bad openfiles '10k'; "
            "entry skipped"))

    def test_file_others_can_write_is_refused(self):
        path = self.d.write("login.conf", DEFAULT, 0o666)
        good = self.d.port()
        self.d.start(f"127.0.0.1:{good} stream tcp nowait nobody /bin/echo echo x\n",
                     args=["-L", path], ready=False)
        self.assertIsNotNone(self.d.wait_log(
            re.escape(f"{path}: not a regular file that only root can write; entry skipped")),
            self.logmsg())

    def test_sighup_rereads_login_conf(self):
        path = self.login_conf("daemon:umask=077:\n" + DEFAULT)
        port = self.start_probe("nobody", path)
        self.assertEqual(self.probe(port)[1], 0o077)
        self.login_conf("daemon:umask=007:\n" + DEFAULT)
        self.d.kill(signal.SIGHUP)
        self.assertIsNotNone(self.d.wait_log(r"generation 2"), self.logmsg())
        self.assertEqual(self.probe(port)[1], 0o007)

    def test_check_mode_reports_class_errors(self):
        path = self.login_conf("bad:priority=99:\n" + DEFAULT)
        port = self.d.port()
        conf = self.d.write("inetd.conf",
                            f"127.0.0.1:{port} stream tcp nowait nobody/bad /bin/echo echo\n")
        status, out = self.d.run_to_exit(["-t", "-L", path, conf])
        self.assertEqual(status, 1, out)
        self.assertIn(f"{conf}:1: login-class: {path}:1: class 'bad': priority '99' is not "
                      "-20 to 20", out)


if __name__ == "__main__":
    import unittest
    unittest.main()
