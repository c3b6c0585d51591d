"""hosts_access(5) with the real daemon: -w wraps external services, -W
internal ones; /etc/hosts.allow and /etc/hosts.deny are the test's own files,
bind-mounted in a mount namespace of the daemon's (harness.use_hosts).
Clients pick their source address in 127.0.0.0/8 (and ::1), so one test
plays several hosts. Names come from the resolver: 127.0.0.1 is "localhost"
through /etc/hosts.
"""

import os
import pwd
import socket
import subprocess
import time
import unittest

import harness
from harness import InetdTestCase

HI = b"hi from the service"


def exchange(src, port, dst="127.0.0.1", send=b"", timeout=4.0):
    """Connects from `src`, sends, half-closes, reads to EOF: b"" when the
    connection is closed on us without a word (a refusal)."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect((dst, port))
        try:
            if send:
                s.sendall(send)
            s.shutdown(socket.SHUT_WR)
            return harness.read_all(s, time.monotonic() + timeout)
        except (ConnectionResetError, BrokenPipeError, OSError):
            return b""


def datagram(src, port, send, timeout=1.5):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.sendto(send, ("127.0.0.1", port))
        try:
            return s.recv(65536)
        except socket.timeout:
            return None


class HostsAccessTest(InetdTestCase):
    def start(self, allow, deny, extra="", args=("-w", "-W")):
        self.d.use_hosts(allow, deny)
        self.hello = self.d.port()
        self.d.script("hello.sh", "#!/bin/sh\necho 'hi from the service'\n")
        conf = (f"127.0.0.1:{self.hello} stream tcp nowait nobody {self.d.path('hello.sh')} hello.sh\n"
                "echo stream tcp nowait root internal\n"
                "echo dgram udp wait root internal\n" + extra)
        self.d.start(conf, args=args)

    def test_allow_then_deny_then_default(self):
        # The readiness probe is /bin/echo: daemon "echo" too, so it is
        # allowed from 127.0.0.1 in every rule set here.
        self.start("hello.sh: 127.0.0.2\necho: 127.0.0.1 127.0.0.2\n",
                   "hello.sh: 127.0.0.0/255.255.255.0\necho: ALL\n")
        self.assertIn(HI, exchange("127.0.0.2", self.hello))     # hosts.allow
        self.assertEqual(exchange("127.0.0.3", self.hello), b"")  # hosts.deny
        self.assertIn(HI, exchange("127.0.1.1", self.hello))     # neither: allowed
        self.assertEqual(exchange("127.0.0.2", 7, send=b"ping\n"), b"ping\n")
        self.assertEqual(exchange("127.0.0.5", 7, send=b"ping\n"), b"")
        self.assertTrue(self.d.wait_log(r"refused connection from 127\.0\.0\.3, service hello\.sh \(tcp\)"),
                        self.logmsg())
        self.assertTrue(self.d.wait_log(r"refused connection from 127\.0\.0\.5, service echo \(tcp\)"),
                        self.logmsg())
        self.assertNotIn("127.0.0.2, service", self.d.log())

    def test_dgram_refused_datagram_is_dropped(self):
        self.start("echo: 127.0.0.1\n", "echo: 127.0.0.6\n")
        self.assertEqual(datagram("127.0.0.2", 7, b"one"), b"one")
        self.assertIsNone(datagram("127.0.0.6", 7, b"two"))
        self.assertEqual(datagram("127.0.0.2", 7, b"three"), b"three")
        self.assertTrue(self.d.wait_log(r"refused connection from 127\.0\.0\.6, service echo \(udp\)"),
                        self.logmsg())

    def test_without_w_nothing_is_wrapped(self):
        self.start("", "ALL: ALL\n", args=())
        self.assertIn(HI, exchange("127.0.0.3", self.hello))
        self.assertEqual(exchange("127.0.0.3", 7, send=b"x\n"), b"x\n")

    def test_w_alone_leaves_internal_services(self):
        self.start("echo: 127.0.0.1\n", "ALL: ALL\n", args=("-w",))
        self.assertEqual(exchange("127.0.0.3", 7, send=b"x\n"), b"x\n")
        self.assertEqual(exchange("127.0.0.3", self.hello), b"")

    def test_ipv6_client(self):
        if not harness.have_ipv6_loopback():
            self.skipTest("no IPv6 loopback")
        port = self.d.port(v6=True)
        self.d.script("v6.sh", "#!/bin/sh\necho v6 served\n")
        self.start("echo: 127.0.0.1\n", "v6.sh: [::1]/128\n",
                   extra=f"[::1]:{port} stream tcp6 nowait nobody {self.d.path('v6.sh')} v6.sh\n")
        self.assertEqual(exchange("::1", port, dst="::1"), b"")
        self.assertTrue(self.d.wait_log(r"refused connection from ::1, service v6\.sh \(tcp6\)"),
                        self.logmsg())
        self.d.write_hosts(deny="v6.sh: [::2]/128\n")
        self.assertTrue(harness.wait_until(lambda: b"v6 served" in exchange("::1", port, dst="::1"),
                                           timeout=5), self.logmsg())

    def test_names_from_the_resolver(self):
        # 127.0.0.1 is "localhost" (no dot: LOCAL); 127.0.0.9 has no name.
        self.start("echo: 127.0.0.1\n", "hello.sh: localhost\necho: UNKNOWN\n")
        self.assertEqual(exchange("127.0.0.1", self.hello), b"")
        self.assertTrue(self.d.wait_log(r"refused connection from localhost, service hello\.sh"),
                        self.logmsg())
        self.assertIn(HI, exchange("127.0.0.9", self.hello))
        self.assertEqual(exchange("127.0.0.9", 7, send=b"x\n"), b"")
        # KNOWN: name and address known; LOCAL: a name without a dot.
        for rule in ("hello.sh: KNOWN\n", "hello.sh: LOCAL\n"):
            self.d.write_hosts(deny=rule)
            self.assertTrue(harness.wait_until(lambda: exchange("127.0.0.9", self.hello) != b"" and
                                               exchange("127.0.0.1", self.hello) == b"", timeout=5),
                            self.logmsg(rule))

    def test_edit_takes_effect_without_restart(self):
        self.start("echo: 127.0.0.1\n", "")
        self.assertIn(HI, exchange("127.0.0.4", self.hello))
        pid = self.d.pid
        self.d.write_hosts(deny="hello.sh: 127.0.0.4\n")
        self.assertTrue(harness.wait_until(lambda: exchange("127.0.0.4", self.hello) == b"",
                                           timeout=5), self.logmsg())
        self.assertIn(HI, exchange("127.0.0.7", self.hello))
        self.assertEqual(self.d.pid, pid)

    def test_path_list(self):
        lst = self.d.write("clients.list", "# the bad ones\n127.0.0.8\n127.0.0.11, 127.0.0.12\n")
        self.start("echo: 127.0.0.1\n", f"hello.sh: {lst}\n")
        self.assertEqual(exchange("127.0.0.8", self.hello), b"")
        self.assertEqual(exchange("127.0.0.12", self.hello), b"")
        self.assertIn(HI, exchange("127.0.0.13", self.hello))

    def test_twist_answers_instead(self):
        self.start("echo: 127.0.0.1\n",
                   "hello.sh: 127.0.0.3 : twist /bin/echo 'go away %a, this is %d'\n"
                   "echo: 127.0.0.3 : twist /bin/echo 'no echo for %a'\n")
        self.assertEqual(exchange("127.0.0.3", self.hello), b"go away 127.0.0.3, this is hello.sh\n")
        self.assertEqual(exchange("127.0.0.3", 7, send=b"x\n"), b"no echo for 127.0.0.3\n")
        self.assertIn(HI, exchange("127.0.0.4", self.hello))

    def test_expansions_look_names_up(self):
        # %h needs the client's name: looked up although no pattern did.
        self.start("echo: 127.0.0.1\n", "hello.sh: 127.0.0.1 : twist /bin/echo '%h;%n;%a;%u'\n")
        self.assertEqual(exchange("127.0.0.1", self.hello), b"localhost;localhost;127.0.0.1;unknown\n")

    def test_banners(self):
        banners = self.d.mkdir("banners")
        self.d.write("banners/hello.sh", "Go away, %a.\n")
        self.start("echo: 127.0.0.1\n" f"hello.sh: 127.0.0.2 : banners {banners}\n",
                   f"hello.sh: 127.0.0.3 : banners {banners}\n")
        self.assertEqual(exchange("127.0.0.3", self.hello), b"Go away, 127.0.0.3.\n")
        self.assertEqual(exchange("127.0.0.2", self.hello), b"Go away, 127.0.0.2.\n" + HI + b"\n")

    def test_spawn_leaves_a_trace_as_the_service_user(self):
        traces = self.d.mkdir("traces", 0o1777)
        self.start("echo: 127.0.0.1\n"
                   f"hello.sh: 127.0.0.5 : spawn /usr/bin/id -u > {traces}/allowed.%a\n",
                   f"hello.sh: 127.0.0.6 : spawn /usr/bin/id -u > {traces}/refused.%a\n")
        self.assertIn(HI, exchange("127.0.0.5", self.hello))
        self.assertEqual(exchange("127.0.0.6", self.hello), b"")
        nobody = pwd.getpwnam("nobody").pw_uid
        for name in ("allowed.127.0.0.5", "refused.127.0.0.6"):
            p = os.path.join(traces, name)
            self.assertTrue(harness.wait_until(lambda: os.path.exists(p) and os.path.getsize(p) > 0,
                                               timeout=5), self.logmsg(name))
            self.assertEqual(os.stat(p).st_uid, nobody)
            self.assertEqual(open(p).read().strip(), str(nobody))

    def test_user_option_but_never_root(self):
        self.d.script("whoami.sh", "#!/bin/sh\nid -u\n")
        port = self.d.port()
        self.start("echo: 127.0.0.1\n"
                   "whoami.sh: 127.0.0.5 : user daemon\n"
                   "whoami.sh: 127.0.0.6 : user root\n", "",
                   extra=f"127.0.0.1:{port} stream tcp nowait nobody {self.d.path('whoami.sh')} whoami.sh\n")
        self.assertEqual(exchange("127.0.0.5", port).strip(), str(pwd.getpwnam("daemon").pw_uid).encode())
        self.assertEqual(exchange("127.0.0.6", port), b"")
        self.assertTrue(self.d.wait_log(r"user root refused"), self.logmsg())
        self.assertEqual(exchange("127.0.0.7", port).strip(), str(pwd.getpwnam("nobody").pw_uid).encode())

    def test_unreadable_file_fails_closed(self):
        # Over the size the monitor reads: it cannot be read whole.
        self.start("echo: 127.0.0.1\n", "")
        self.assertIn(HI, exchange("127.0.0.4", self.hello))
        self.d.write_hosts(allow="# padding\n" * 8000)
        self.assertTrue(self.d.wait_log(r"hosts\.allow: too large: wrapped services refuse every"),
                        self.logmsg())
        self.assertEqual(exchange("127.0.0.4", self.hello), b"")
        self.assertEqual(exchange("127.0.0.4", 7, send=b"x\n"), b"")
        self.assertTrue(self.d.wait_log(r"refused connection from 127\.0\.0\.4, service hello\.sh "
                                        r"\(tcp\): /etc/hosts\.allow cannot be read"), self.logmsg())

    def test_log_allowed_with_l(self):
        self.start("echo: 127.0.0.1\n", "", args=("-w", "-l"))
        self.assertIn(HI, exchange("127.0.0.4", self.hello))
        self.assertTrue(self.d.wait_log(r"connection from 127\.0\.0\.4, service hello\.sh \(tcp\)"),
                        self.logmsg())

    def test_t_checks_the_hosts_files(self):
        self.d.use_hosts("ALL: 127.0.0.1 : bogus option\nno colon here\n", "")
        conf = self.d.write("check.conf", "echo stream tcp nowait root internal\n")
        cmd = self.d.with_hosts([self.d.binary, "-t", "-w", "-u", "nobody", conf])
        r = subprocess.run(cmd, capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(b"/etc/hosts.allow:1: bad option", r.stderr)
        self.assertIn(b"/etc/hosts.allow:2: missing ':'", r.stderr)
        self.d.write_hosts(allow="ALL: 127.0.0.1\n")
        r = subprocess.run(cmd, capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r)
        # Without -w or -W the files play no part.
        self.d.write_hosts(allow="broken\n")
        cmd = self.d.with_hosts([self.d.binary, "-t", "-u", "nobody", conf])
        self.assertEqual(subprocess.run(cmd, capture_output=True, timeout=20).returncode, 0)

    def test_rfc931_user_at_host(self):
        # Our own auth built-in answers the ident query on port 113: the
        # client socket belongs to root (this test).
        self.start("echo: 127.0.0.1\n", "hello.sh: root@127.0.0.3\n",
                   extra="auth stream tcp nowait root internal auth -r\n", args=("-w",))
        self.assertEqual(exchange("127.0.0.3", self.hello), b"")
        self.assertTrue(self.d.wait_log(r"refused connection from root@127\.0\.0\.3, service hello\.sh"),
                        self.logmsg())
        self.assertIn(HI, exchange("127.0.0.4", self.hello))


if __name__ == "__main__":
    unittest.main()
