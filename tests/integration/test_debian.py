"""Real daemons from Debian, run by inetd as they would be in production:
in.tftpd (tftpd-hpa), git daemon --inetd, rsync --daemon."""

import os
import pwd
import subprocess
import unittest

import harness
from harness import InetdTestCase

CLIENT_TIMEOUT = 20


def payload(size, seed):
    # Every byte value, CR and LF included, so a text-mode transfer shows.
    return bytes((i * 131 + seed + (i >> 8)) & 0xFF for i in range(size))


class DebianDaemonTest(InetdTestCase):

    def run_client(self, argv, cwd=None, env=None):
        full_env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": self.d.path("home"),
                    "LC_ALL": "C"}
        full_env.update(env or {})
        os.makedirs(full_env["HOME"], exist_ok=True)
        try:
            r = subprocess.run(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            self.fail(self.logmsg(f"{argv} timed out: {e.output!r}"))
        return r

    def test_tftpd(self):
        tftpd, tftp = self.need_tools("in.tftpd", "tftp")
        port = self.d.port()
        root = self.d.mkdir("tftproot")
        data = payload(70000, 7)  # > 128 blocks of 512 bytes
        self.d.write("tftproot/boot.img", data, 0o644)
        # -s: chroot (needs root; tftpd then drops to its own -u, nobody);
        # -t 1: exit after one idle second, so inetd must run it again.
        self.d.start(f"127.0.0.1:{port} dgram udp wait root {tftpd} in.tftpd -t 1 -s {root}\n")
        for n in (1, 2):
            dest = self.d.mkdir(f"fetch{n}")
            r = self.run_client([tftp, "-m", "binary", "127.0.0.1", str(port), "-c", "get", "boot.img"],
                                cwd=dest)
            got_path = os.path.join(dest, "boot.img")
            got = harness.read_bytes(got_path) if os.path.exists(got_path) else b""
            self.assertEqual(len(got), len(data), self.logmsg(f"fetch {n}: tftp said {r.stdout!r}"))
            self.assertTrue(got == data, f"fetch {n}: bytes differ")
            if n == 1:
                # Let the first in.tftpd time out and exit: the second fetch
                # needs a fresh spawn, after the listener heard Exited.
                gone = harness.wait_until(lambda: not self.d.service_pids("in.tftpd"), timeout=8)
                self.assertTrue(gone, self.logmsg("in.tftpd did not exit after -t 1"))

    def test_git_daemon(self):
        (git,) = self.need_tools("git")
        port = self.d.port()
        base = self.d.mkdir("git")
        work = self.d.mkdir("work")
        # An empty file of our own, not /dev/null: some machines have a
        # regular file there that other programs write into.
        gitconfig = self.d.write("gitconfig", "")
        env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": gitconfig,
               "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.org",
               "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.org"}
        self.d.write("work/hello.txt", "hello from inetd\n")
        for argv in ([git, "init", "-q", "-b", "main", work],
                     [git, "-C", work, "add", "hello.txt"],
                     [git, "-C", work, "commit", "-q", "-m", "one"],
                     [git, "clone", "-q", "--bare", work, os.path.join(base, "repo.git")]):
            r = self.run_client(argv, env=env)
            self.assertEqual(r.returncode, 0, r.stdout)
        head = self.run_client([git, "-C", work, "rev-parse", "HEAD"], env=env).stdout.strip()
        # git daemon runs as nobody; upload-pack refuses a repository owned by
        # another user ("dubious ownership") and the service gets no HOME or
        # GIT_CONFIG to say safe.directory, so nobody owns the repository.
        nobody = pwd.getpwnam("nobody")
        for dirpath, dirnames, filenames in os.walk(base):
            for name in [dirpath] + [os.path.join(dirpath, f) for f in dirnames + filenames]:
                os.lchown(name, nobody.pw_uid, nobody.pw_gid)
        self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody {git} "
                     f"git daemon --inetd --export-all --base-path={base} {base}\n")
        dest = os.path.join(self.d.tmp, "clone")
        r = self.run_client([git, "clone", "-q", f"git://127.0.0.1:{port}/repo.git", dest], env=env)
        self.assertEqual(r.returncode, 0, self.logmsg(f"git clone: {r.stdout!r}"))
        self.assertEqual(harness.read_bytes(os.path.join(dest, "hello.txt")), b"hello from inetd\n")
        got = self.run_client([git, "-C", dest, "rev-parse", "HEAD"], env=env).stdout.strip()
        self.assertEqual(got, head)

    def test_rsync_daemon(self):
        (rsync,) = self.need_tools("rsync")
        port = self.d.port()
        share = self.d.mkdir("share")
        data = payload(200000, 3)
        self.d.write("share/file.bin", data, 0o644)
        # Run as nobody: no chroot (that needs root), a log file of its own.
        self.d.mkdir("rsynclog", 0o777)
        conf = self.d.write("rsyncd.conf", (
            "use chroot = no\n"
            f"log file = {self.d.path('rsynclog', 'rsyncd.log')}\n"
            "[mod]\n"
            f"    path = {share}\n"
            "    read only = yes\n"))
        self.d.start(f"127.0.0.1:{port} stream tcp nowait nobody {rsync} "
                     f"rsync --daemon --config={conf}\n")
        dest = self.d.mkdir("dest")
        for n in (1, 2):
            target = os.path.join(dest, f"copy{n}")
            r = self.run_client([rsync, f"rsync://127.0.0.1:{port}/mod/file.bin", target])
            self.assertEqual(r.returncode, 0, self.logmsg(f"rsync: {r.stdout!r}"))
            self.assertTrue(harness.read_bytes(target) == data, "rsync copy differs")
        # The module listing goes through the same daemon.
        r = self.run_client([rsync, f"rsync://127.0.0.1:{port}/"])
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn(b"mod", r.stdout)


if __name__ == "__main__":
    unittest.main()
