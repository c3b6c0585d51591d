#!/usr/bin/env python3
"""Differential test: listener/hosts_access against Debian's tcpdmatch.

Generates seeded, reproducible rule sets (hosts.allow, hosts.deny and /path
lists) with several queries (daemon[@server] [user@]client) each, asks
Debian's `tcpdmatch -d` (the reference decision engine of tcp_wrappers 7.6)
and this project's `hosts_match` helper, and requires the same answer on
every case: the decision (granted / denied / delegated), the matched file and
line, and the %-expanded spawn/twist commands of the matched rule.

tcpdmatch runs with tcpdmatch_shim.so preloaded: no DNS at all (a client or
server given as an address has the name "unknown", netgroups are empty) and
libwrap's syslog lines on stderr, where the matched line and the expanded
options are read.

Covered, needing no DNS: IPv4 addresses (canonical and not), `net.`
prefixes, n.n.n.n/m.m.m.m, n.n.n.n/prefix (valid and malformed), [ipv6] and
[ipv6]/prefix (valid and malformed), `*`/`?` wildcards, `.suffix` on
addresses, ALL, KNOWN, UNKNOWN, LOCAL, PARANOID (the `paranoid` client),
EXCEPT nesting in both lists, user@host, daemon@host, @netgroup, /path lists
(nested, missing), host names (all fail, as the names are unknown),
continuation lines, comments, blank lines, lines without ':', overlong and
unterminated lines, CRLF, and hosts_options(5) (every option, good and bad
values, `\\:` escapes, %-expansion).

Not covered (they need a resolver, or depend on the machine): host names and
.domain patterns against real names, LOCAL/KNOWN with a known name, PARANOID
of a real address, netgroup members; the `user` option (tcpdmatch calls
setgid() even in its dry run, which fails without CAP_SETGID); `%p`
(tcpdmatch's own pid). The unit tests cover those against the man pages.

Documented differences (DIFFERENCES below; none is generated here):
- `aclexec` (a Debian extension) is not supported: it is a bad option, so
  its rule denies. tcpdmatch's dry run grants.
- A NUL byte in a line ends the file like an overlong line; libwrap glues
  the line to the next one (fgets/strlen), which no one can mean.
- /path lists nest at most 8 deep and a list that names itself is cut
  there; libwrap recurses until the stack runs out.

Usage: tcpdmatch_diff_test.py HOSTS_MATCH SHIM [--cases N] [--seed S] [--jobs J]
Exit 77 (skipped) when tcpdmatch is not installed.
"""

import argparse
import concurrent.futures
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

DIFFERENCES = {
    "aclexec": "not supported: a bad option, the rule denies (tcpdmatch: granted)",
    "nul-byte": "ends the file like an overlong line (libwrap: joins the next line)",
    "list-depth": "/path lists nest at most 8 deep (libwrap: unbounded recursion)",
}

V4 = ["10.0.0.1", "10.0.0.2", "10.0.1.5", "10.1.2.3", "192.168.1.10",
      "192.168.1.255", "172.16.5.4", "1.2.3.4", "255.255.255.255", "0.0.0.0",
      "127.0.0.1", "8.8.4.4", "100.64.0.1"]
V6 = ["::1", "2001:db8::1", "2001:db8::ff", "2001:db8:1::5", "fe80::1", "::",
      "2001:db8:0:1:2:3:4:5", "::10.0.0.1"]
MAPPED = ["::ffff:10.0.0.1", "::ffff:192.168.1.10"]
DAEMONS = ["in.foo", "sshd", "in.tftpd", "foo", "in.ftpd", "fingerd", "unknown"]
USERS = [None, "bob", "alice", "BoB", "root", "unknown"]


def canon6(t):
    return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, t))


class Gen:
    """One rule set and its queries, from a seeded random.Random."""

    def __init__(self, rnd, tmpdir):
        self.r = rnd
        self.dir = tmpdir
        self.lists = {}        # path -> contents
        self.kinds = {}        # pattern kind -> count, for the coverage report

    def pick(self, xs):
        return self.r.choice(xs)

    def note(self, kind):
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    # ---- host patterns ------------------------------------------------------
    def v4_exact(self):
        a = self.pick(V4)
        if self.r.random() < 0.2:
            p = a.split(".")
            i = self.r.randrange(4)
            p[i] = self.pick(["0" + p[i], "0x%x" % int(p[i]), p[i] + "0"])
            self.note("v4-noncanonical")
            return ".".join(p)
        self.note("v4-exact")
        return a

    def v4_prefix(self):
        p = self.pick(V4).split(".")
        k = self.r.randint(1, 4)
        s = ".".join(p[:k]) + "."
        if self.r.random() < 0.1:
            s = "0" + s
        self.note("v4-net-prefix")
        return s

    def v4_net(self):
        a = [int(x) for x in self.pick(V4).split(".")]
        bits = self.r.randint(0, 32)
        m = (0xffffffff << (32 - bits)) & 0xffffffff if bits else 0
        n = (a[0] << 24 | a[1] << 16 | a[2] << 8 | a[3])
        if self.r.random() < 0.75:
            n &= m          # a proper network; otherwise host bits are left set
        dq = lambda v: "%d.%d.%d.%d" % (v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255)
        kind = self.r.random()
        if kind < 0.4:
            mask = dq(m)
            self.note("v4-net/mask")
        elif kind < 0.8:
            mask = str(bits)
            self.note("v4-net/prefix")
        else:
            mask = self.pick(["255.255.255.255", "0.0.0.0", "255.0.255.0", "+24", "024", "24x",
                              "", "-1", "0x18", "4294967320", "33", "0", "1.", "32.1", "255.255.255.0.",
                              "//8"])
            self.note("v4-net/weird")
        net = dq(n)
        if self.r.random() < 0.05:
            net = self.pick(["1.2.3", "010.0.0.0", "255.255.255.255", "10.0.0.0.", "a.b.c.d"])
        return net + "/" + mask

    def v6_text(self):
        a = self.pick(V6 + ["2001:db8::", "fe80::", "2001:db8:1::"])
        r = self.r.random()
        if r < 0.1:
            return a.upper()
        if r < 0.15:
            return "0" + a if not a.startswith(":") else "0" + a
        return a

    def v6_exact(self):
        if self.r.random() < 0.15:
            self.note("v6-malformed")
            return self.pick(["[::1", "[::1]x", "[1.2.3.4]", "[[::1]]", "[zz::1]", "[]", "[::1]]"])
        self.note("v6-exact")
        return "[" + self.v6_text() + "]"

    def v6_net(self):
        p = self.r.choice([str(self.r.randint(0, 128))] * 4 +
                          ["129", "-1", "", "+64", "064", "64x", "0x40", "4294967424", "-0"])
        self.note("v6-net/prefix")
        return "[" + self.v6_text() + "]/" + p

    def wildcard(self):
        if self.r.random() < 0.6:
            a = self.pick(V4)
        else:
            a = canon6(self.pick(V6))
        s = list(a)
        for _ in range(self.r.randint(1, 3)):
            i = self.r.randrange(len(s))
            s[i] = self.pick(["?", "*"])
        if self.r.random() < 0.3:
            s = ["*"] + s[self.r.randrange(len(s)):]
        w = "".join(s).replace(":", "?")   # an unbracketed ':' would end the field
        self.note("wildcard")
        return w

    def suffix(self):
        a = self.pick(V4)
        p = a.split(".")
        self.note("dot-suffix")
        return "." + ".".join(p[self.r.randint(1, 3):])

    def keyword(self):
        k = self.pick(["ALL", "KNOWN", "UNKNOWN", "LOCAL", "PARANOID", "unknown", "paranoid", "all", "Known"])
        self.note("kw-" + k.upper())
        return k

    def hostname(self):
        self.note("hostname")
        return self.pick(["foo.example.com", ".example.com", "localhost", "example.", "*.example.com",
                          "ex?mple.com", "LOCALHOST"])

    def netgroup(self):
        self.note("netgroup")
        return self.pick(["@ng1", "@trusted", "@"])

    def listfile(self, depth=0):
        self.note("path-list")
        if self.r.random() < 0.1:
            return os.path.join(self.dir, "no-such-list")
        path = os.path.join(self.dir, "list%d" % len(self.lists))
        self.lists[path] = None
        toks = []
        for _ in range(self.r.randint(0, 4)):
            if depth < 2 and self.r.random() < 0.15:
                toks.append(self.listfile(depth + 1))
            else:
                toks.append(self.host(allow_lists=False))
        seps = [" ", "\n", "\t", "  \n "]
        self.lists[path] = "".join(t + self.pick(seps) for t in toks)
        return path

    def host(self, allow_lists=True):
        f = self.pick([self.v4_exact] * 4 + [self.v4_prefix] * 2 + [self.v4_net] * 4 +
                      [self.v6_exact] * 2 + [self.v6_net] * 2 + [self.wildcard] * 2 +
                      [self.suffix, self.keyword, self.keyword, self.hostname, self.netgroup] +
                      ([self.listfile] if allow_lists else []))
        return f()

    def user(self):
        self.note("user@host")
        return self.pick(["ALL", "KNOWN", "UNKNOWN", "bob", "b?b", "b*", "alice", "BOB", ".ob", "bo.", "root"])

    def client_token(self):
        if self.r.random() < 0.15:
            return self.user() + "@" + self.host()
        return self.host()

    # ---- daemon patterns ----------------------------------------------------
    def server_host(self):
        self.note("daemon@host")
        return self.pick([self.v4_exact, self.v4_net, self.v6_exact, self.v6_net, self.keyword,
                          self.wildcard, self.v4_prefix])()

    def daemon_token(self):
        d = self.pick(["ALL", "in.foo", "sshd", "in.tftpd", "in.*", "in.", "*d", "KNOWN", "ssh?",
                       ".tftpd", "foo", "IN.FOO", "unknown", "*"])
        self.note("daemon")
        if self.r.random() < 0.15:
            d += "@" + self.server_host()
        return d

    # ---- lists, rules, files -----------------------------------------------
    def lst(self, tok, depth=0):
        out = [tok() for _ in range(self.r.randint(1, 3))]
        if depth < 3 and self.r.random() < (0.3 if depth == 0 else 0.4):
            self.note("EXCEPT-depth-%d" % (depth + 1))
            out.append(self.pick(["EXCEPT", "except", "Except"]))
            out.append(self.lst(tok, depth + 1))
        elif self.r.random() < 0.02:
            out.append("EXCEPT")    # dangling
            self.note("EXCEPT-dangling")
        seps = [" ", ", ", ",", "\t", " , "]
        s = ""
        for i, t in enumerate(out):
            s += (self.pick(seps) if i else "") + t
        return s

    def command(self):
        words = []
        for _ in range(self.r.randint(1, 4)):
            words.append(self.pick(["echo", "/bin/true", "%a", "%A", "%c", "%d", "%h", "%H", "%n", "%N",
                                    "%s", "%u", "%%", "%r", "%R", "%z", "x%a-%d", "[%u]", "a\\:b", "\\x",
                                    "100%", "'%c'", "$HOME", "%"]))
        self.note("opt-%-expansion")
        return " ".join(words)

    def options(self):
        opts = []
        n = self.r.randint(0, 3)
        for _ in range(n):
            k = self.r.random()
            if k < 0.3:
                opts.append(self.pick(["spawn", "Spawn", "spawn ="]) + " " + self.command())
            elif k < 0.4:
                opts.append(self.pick(["severity auth.info", "severity local7.debug", "severity notice",
                                       "severity warn", "severity syslog.info", "severity auth.",
                                       "severity LOCAL0.WARNING", "severity=mail.err"]))
            elif k < 0.5:
                opts.append(self.pick(["umask 022", "umask 0777", "umask 999", "umask 0x7", "umask 1777"]))
            elif k < 0.6:
                opts.append(self.pick(["nice", "nice 5", "nice -5", "nice +3", "nice x", "nice 5 6"]))
            elif k < 0.7:
                opts.append(self.pick(["keepalive", "keepalive 5", "linger 5", "linger", "linger -1",
                                       "rfc931", "rfc931 5", "rfc931 0", "rfc931 x"]))
            elif k < 0.8:
                opts.append(self.pick(["banners /etc/banners", "banners", "setenv FOO bar baz",
                                       "setenv x=y", "setenv X", "setenv  A  %a "]))
            elif k < 0.9:
                opts.append(self.pick(["bogus", "", " ", "allow", "deny"]))   # allow/deny mid-list: error
            else:
                opts.append(self.pick(["allow extra", "deny=1", "twist", "DENY", "Allow="]))
        end = self.r.random()
        if end < 0.25:
            opts.append(self.pick(["allow", "deny", "ALLOW", "deny ", "allow="]))
        elif end < 0.35:
            opts.append(self.pick(["twist", "twist ="]) + " " + self.command())
        if opts:
            self.note("options")
        return opts

    def rule(self):
        r = self.lst(self.daemon_token) + self.pick([":", " : ", ": ", "\t:\t"]) + self.lst(self.client_token)
        if self.r.random() < 0.35:
            opts = self.options()
            if opts or self.r.random() < 0.1:
                r += self.pick([": ", " : ", ":"]) + " : ".join(opts)
        if self.r.random() < 0.1:
            # a `\` continuation where a blank was
            spaces = [i for i, c in enumerate(r) if c == " "]
            if spaces:
                i = self.pick(spaces)
                r = r[:i] + " \\\n" + r[i + 1:]
                self.note("continuation")
        return r

    def file(self):
        lines = []
        for _ in range(self.r.randint(0, 6)):
            k = self.r.random()
            if k < 0.08:
                lines.append(self.pick(["# a comment", "#ALL: ALL", "# continued \\", "", "   ", "\t"]))
                self.note("comment-or-blank")
            elif k < 0.11:
                lines.append(self.pick(["ALL ALL", "in.foo 10.0.0.1", " # not a comment: 10.0.0.1"]))
                self.note("no-colon-or-indented-hash")
            else:
                lines.append(("  " if self.r.random() < 0.05 else "") + self.rule())
        eol = "\r\n" if self.r.random() < 0.03 else "\n"
        text = "".join(l + eol for l in lines)
        k = self.r.random()
        if k < 0.03 and text:
            text = text.rstrip("\n")     # unterminated last line
            self.note("missing-newline")
        elif k < 0.04:
            text = "ALL: " + "10.0.0.9 " * 260 + "\n" + text   # overlong: ends the file
            self.note("overlong-line")
        return text

    def queries(self, n):
        out = []
        for _ in range(n):
            d = self.pick(DAEMONS)
            if self.r.random() < 0.3:
                d += "@" + self.pick(V4 + [canon6(x) for x in V6] + ["unknown", "paranoid"])
            r = self.r.random()
            if r < 0.55:
                c = self.pick(V4)
            elif r < 0.85:
                c = canon6(self.pick(V6))
            elif r < 0.9:
                c = self.pick(MAPPED)
            else:
                c = self.pick(["unknown", "paranoid"])
            u = self.pick(USERS)
            out.append((d, (u + "@" if u else "") + c))
        return out


def run_tcpdmatch(tcpdmatch, shim, cwd, daemon, client):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LD_PRELOAD": shim, "LC_ALL": "C"}
    p = subprocess.run([tcpdmatch, "-i", "/dev/null", "-d", daemon, client], cwd=cwd, env=env, close_fds=False,
                       capture_output=True, text=True, errors="replace", timeout=30)
    verdict, table, line, opts, error = "?", "none", 0, [], False
    for l in p.stdout.splitlines():
        if l.startswith("access:"):
            verdict = l.split()[1]
    for l in p.stderr.splitlines():
        if not l.startswith("LOG: "):
            continue
        m = l[5:]
        if m.startswith("matched:"):
            w = m.split()
            table, line = w[1].split(".")[1], int(w[3])
        elif m.startswith("option:"):
            body = m[len("option:"):].lstrip(" ")
            key, _, val = body.partition(" ")
            if key.lower() in ("spawn", "twist"):
                opts.append(key.lower() + " " + val)
        elif m.startswith("error:"):
            error = True
    return verdict, table, line, (None if error else opts)


def run_ours(hosts_match, cwd, queries):
    inp = "".join("%s %s\n" % q for q in queries)
    p = subprocess.run([hosts_match, cwd], input=inp, capture_output=True, text=True, errors="replace",
                       timeout=60)
    out, cur = [], None
    for l in p.stdout.splitlines():
        if l == "end":
            out.append(cur)
            cur = None
        elif cur is None:
            v, t, n = l.split()
            cur = [v, t, int(n), []]
        elif l.startswith("option: "):
            cur[3].append(l[len("option: "):])
    if len(out) != len(queries):
        raise RuntimeError("hosts_match answered %d of %d queries: %s" % (len(out), len(queries), p.stderr))
    return out


def one_set(args, seed, index, root):
    rnd = random.Random("%d/%d" % (seed, index))
    d = os.path.join(root, "set%d" % index)
    os.mkdir(d)
    g = Gen(rnd, d)
    allow, deny = g.file(), g.file()
    if rnd.random() < 0.9:
        with open(os.path.join(d, "hosts.allow"), "w", newline="") as f:
            f.write(allow)
    if rnd.random() < 0.9:
        with open(os.path.join(d, "hosts.deny"), "w", newline="") as f:
            f.write(deny)
    for p, text in g.lists.items():
        with open(p, "w") as f:
            f.write(text)
    qs = g.queries(args.per_set)
    ours = run_ours(args.hosts_match, d, qs)
    diffs = []
    for q, o in zip(qs, ours):
        ref = run_tcpdmatch(args.tcpdmatch, args.shim, d, q[0], q[1])
        same = (ref[0] == o[0] and ref[1] == o[1] and ref[2] == o[2] and
                (ref[3] is None or ref[3] == o[3]))
        if not same:
            diffs.append((index, q, ref, o, allow, deny, dict(g.lists)))
    if not (args.keep and diffs):
        shutil.rmtree(d, ignore_errors=True)
    return len(qs), diffs, g.kinds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hosts_match")
    ap.add_argument("shim")
    ap.add_argument("--cases", type=int, default=10400)
    ap.add_argument("--per-set", type=int, default=8)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2))
    ap.add_argument("--show", type=int, default=20, help="print this many differences in full")
    ap.add_argument("--only", type=int, help="run this rule set only")
    ap.add_argument("--keep", help="keep the rule sets that differ in this directory")
    ap.add_argument("--tcpdmatch", default=shutil.which("tcpdmatch") or "/usr/sbin/tcpdmatch")
    args = ap.parse_args()
    if not os.access(args.tcpdmatch, os.X_OK):
        print("SKIP: tcpdmatch not installed (apt-get install tcpd)")
        return 77
    args.hosts_match = os.path.abspath(args.hosts_match)
    args.shim = os.path.abspath(args.shim)

    t0 = time.monotonic()
    sets = (args.cases + args.per_set - 1) // args.per_set
    total, diffs, kinds = 0, [], {}
    indexes = [args.only] if args.only is not None else range(sets)
    with tempfile.TemporaryDirectory(prefix="tcpdmatch-diff-") as tmp:
        root = args.keep or tmp
        if args.keep:
            os.makedirs(root, exist_ok=True)
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
            for n, dd, k in ex.map(lambda i: one_set(args, args.seed, i, root), indexes):
                total += n
                diffs.extend(dd)
                for kk, vv in k.items():
                    kinds[kk] = kinds.get(kk, 0) + vv
    dt = time.monotonic() - t0

    print("pattern kinds generated: " + ", ".join("%s=%d" % kv for kv in sorted(kinds.items())))
    print("documented differences (not generated): " + "; ".join("%s: %s" % kv for kv in DIFFERENCES.items()))
    for (index, q, ref, o, allow, deny, lists) in diffs[:args.show]:
        print("\n--- DIFFERENCE: seed %d set %d query %s %s" % (args.seed, index, q[0], q[1]))
        print("tcpdmatch: %s %s line %d options %s" % ref)
        print("ours:      %s %s line %d options %s" % tuple(o))
        print("hosts.allow:\n" + allow + "hosts.deny:\n" + deny)
        for p, t in lists.items():
            print("%s:\n%s" % (p, t))
    print("\n%d cases in %d rule sets, seed %d, %.1f s: %d differences" %
          (total, sets, args.seed, dt, len(diffs)))
    print("%d passed, %d failed" % (total - len(diffs), len(diffs)))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
