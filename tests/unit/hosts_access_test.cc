// hosts_access(5) / hosts_options(5): the parser, the matcher, the lazy
// lookups, the options and the %-expansion. Table-driven; the expected
// answers are libwrap's (Debian's tcp_wrappers 7.6), checked by hand against
// tcpdmatch where a name is not involved (the differential test does that
// wholesale) and against the manual pages where one is.
#include <netinet/in.h>
#include <syslog.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "listener/hosts_access.h"

using namespace inetd::listener;

namespace {

using Kind = HostsVerdict::Kind;

// A request in a compact form. Names: "" = not looked up, "?" = lookup
// failed, "!" = paranoid, anything else = found.
struct Req {
  std::string daemon = "in.fingerd";
  std::string client = "192.168.1.10";
  std::string client_name = "?";
  std::string user = "?";
  std::string server = "10.0.0.1";
  std::string server_name = "?";
  uint64_t netgroups = 0;
};

void SetName(const std::string& n, Lookup* state, std::string_view* name) {
  if (n.empty()) {
    *state = Lookup::kNotDone;
  } else if (n == "?") {
    *state = Lookup::kFailed;
  } else if (n == "!") {
    *state = Lookup::kParanoid;
  } else {
    *state = Lookup::kFound;
    *name = n;
  }
}

HostsRequest Make(const Req& r) {
  HostsRequest q;
  q.daemon = r.daemon;
  if (r.client != "unknown") q.client.addr = *HostAddr::Parse(r.client);
  if (r.server != "unknown") q.server.addr = *HostAddr::Parse(r.server);
  SetName(r.client_name, &q.client.name_state, &q.client.name);
  SetName(r.server_name, &q.server.name_state, &q.server.name);
  SetName(r.user, &q.user_state, &q.user);
  q.client.netgroups = r.netgroups;
  return q;
}

HostsPolicy Policy(std::string_view allow, std::string_view deny = "", const HostsLists& lists = {}) {
  return HostsPolicy::Compile(HostsText{"/etc/hosts.allow", true, allow}, HostsText{"/etc/hosts.deny", true, deny},
                              lists);
}

// "allow:N", "deny:N" (matched hosts.allow/deny line N), "allow" (no match),
// "need:client" / "need:server" / "need:user".
std::string Answer(const HostsPolicy& p, const Req& r) {
  HostsVerdict v = p.Check(Make(r));
  if (v.kind == Kind::kNeedLookup) {
    return v.need == kNeedClientName ? "need:client" : v.need == kNeedServerName ? "need:server" : "need:user";
  }
  std::string s = v.kind == Kind::kAllow ? "allow" : "deny";
  if (v.rule) s += ":" + std::to_string(v.rule->line);
  return s;
}

// ---- pattern kinds -----------------------------------------------------------

struct MatchCase {
  const char* allow;
  Req req;
  const char* want;  // with deny = "ALL: ALL\n"
};

class Patterns : public ::testing::TestWithParam<MatchCase> {};

TEST_P(Patterns, Match) {
  const MatchCase& c = GetParam();
  HostsPolicy p = Policy(c.allow, "ALL: ALL\n");
  EXPECT_EQ(Answer(p, c.req), c.want) << c.allow;
}

Req Client(const char* addr, const char* name = "?") {
  Req r;
  r.client = addr;
  r.client_name = name;
  return r;
}
Req Daemon(const char* d) {
  Req r;
  r.daemon = d;
  return r;
}
Req User(const char* user, const char* addr = "192.168.1.10") {
  Req r;
  r.user = user;
  r.client = addr;
  return r;
}
Req Server(const char* addr, const char* name = "?") {
  Req r;
  r.server = std::string(addr);
  r.server_name = std::string(name);
  return r;
}

INSTANTIATE_TEST_SUITE_P(HostsAccess, Patterns, ::testing::Values(
    // ALL, exact addresses (canonical: numbers; others: text)
    MatchCase{"ALL: ALL\n", Client("1.2.3.4"), "allow:1"},
    MatchCase{"ALL: 192.168.1.10\n", Client("192.168.1.10"), "allow:1"},
    MatchCase{"ALL: 192.168.1.10\n", Client("192.168.1.11"), "deny:1"},
    MatchCase{"ALL: 192.168.001.10\n", Client("192.168.1.10"), "deny:1"},
    MatchCase{"ALL: 255.255.255.255\n", Client("255.255.255.255"), "allow:1"},
    // net. prefixes
    MatchCase{"ALL: 192.168.\n", Client("192.168.7.7"), "allow:1"},
    MatchCase{"ALL: 192.16.\n", Client("192.168.7.7"), "deny:1"},
    MatchCase{"ALL: 1.\n", Client("10.0.0.1"), "deny:1"},
    MatchCase{"ALL: 1.2.3.4.\n", Client("1.2.3.4"), "deny:1"},
    // net/mask: the net is not masked, 255.255.255.255 is no mask
    MatchCase{"ALL: 131.155.72.0/255.255.254.0\n", Client("131.155.73.200"), "allow:1"},
    MatchCase{"ALL: 131.155.72.0/255.255.254.0\n", Client("131.155.74.1"), "deny:1"},
    MatchCase{"ALL: 1.2.3.1/255.255.255.0\n", Client("1.2.3.1"), "deny:1"},
    MatchCase{"ALL: 1.2.3.4/255.255.255.255\n", Client("1.2.3.4"), "deny:1"},
    MatchCase{"ALL: 0.0.0.0/0.0.0.0\n", Client("8.8.8.8"), "allow:1"},
    MatchCase{"ALL: 010.0.0.0/255.0.0.0\n", Client("8.1.2.3"), "allow:1"},   // inet_addr octal
    MatchCase{"ALL: 0.0.0.0/0.0.0.0\n", Client("255.255.255.255"), "deny:1"},
    // net/prefix: 1..32, atoi()
    MatchCase{"ALL: 10.0.0.0/8\n", Client("10.200.0.1"), "allow:1"},
    MatchCase{"ALL: 1.2.3.4/32\n", Client("1.2.3.4"), "allow:1"},
    MatchCase{"ALL: 1.2.3.4/31\n", Client("1.2.3.5"), "allow:1"},
    MatchCase{"ALL: 0.0.0.0/1.\n", Client("1.2.3.4"), "allow:1"},
    MatchCase{"ALL: 1.2.3.4/32x\n", Client("1.2.3.4"), "allow:1"},
    MatchCase{"ALL: 1.2.3.4/4294967328\n", Client("1.2.3.4"), "allow:1"},
    MatchCase{"ALL: 10.0.0.0/8\n", Client("::ffff:10.1.1.1"), "allow:1"},   // v4-mapped is v4
    MatchCase{"ALL: 10.0.0.0/8\n", Client("::1"), "deny:1"},
    // [ipv6], [ipv6]/prefix (the net is masked here; /0 is fine)
    MatchCase{"ALL: [::1]\n", Client("::1"), "allow:1"},
    MatchCase{"ALL: [0:0::1]\n", Client("::1"), "allow:1"},
    MatchCase{"ALL: [2001:db8::]/32\n", Client("2001:db8:ffff::1"), "allow:1"},
    MatchCase{"ALL: [2001:db8::]/32\n", Client("2001:db9::1"), "deny:1"},
    MatchCase{"ALL: [3ffe:505:2:1::]/64\n", Client("3ffe:505:2:1:ffff:ffff:ffff:ffff"), "allow:1"},
    MatchCase{"ALL: [::3]/127\n", Client("::2"), "allow:1"},
    MatchCase{"ALL: [::2]/0\n", Client("fe80::1"), "allow:1"},
    MatchCase{"ALL: [::]/0\n", Client("1.2.3.4"), "deny:1"},
    MatchCase{"ALL: [::ffff:1.2.3.4]\n", Client("::ffff:1.2.3.4"), "deny:1"},
    // wildcards, on addresses and names, case-insensitive
    MatchCase{"ALL: 192.168.1.?\n", Client("192.168.1.7"), "allow:1"},
    MatchCase{"ALL: 192.168.*\n", Client("192.168.1.7"), "allow:1"},
    MatchCase{"ALL: *1\n", Client("::1"), "allow:1"},
    MatchCase{"ALL: *.EXAMPLE.com\n", Client("1.2.3.4", "www.example.COM"), "allow:1"},
    MatchCase{"ALL: w?w.example.com\n", Client("1.2.3.4", "www.example.com"), "allow:1"},
    // .domain (also against the address text, as libwrap does)
    MatchCase{"ALL: .tue.nl\n", Client("1.2.3.4", "wzv.win.tue.nl"), "allow:1"},
    MatchCase{"ALL: .tue.nl\n", Client("1.2.3.4", "tue.nl"), "deny:1"},
    MatchCase{"ALL: .10\n", Client("192.168.1.10"), "allow:1"},
    // host names
    MatchCase{"ALL: WWW.example.com\n", Client("1.2.3.4", "www.example.com"), "allow:1"},
    MatchCase{"ALL: www.example.com\n", Client("1.2.3.4", "?"), "deny:1"},
    MatchCase{"ALL: example.\n", Client("1.2.3.4", "example.org"), "allow:1"},
    // LOCAL, KNOWN, UNKNOWN, PARANOID
    MatchCase{"ALL: LOCAL\n", Client("1.2.3.4", "printer"), "allow:1"},
    MatchCase{"ALL: LOCAL\n", Client("1.2.3.4", "printer.lan"), "deny:1"},
    MatchCase{"ALL: LOCAL\n", Client("1.2.3.4", "?"), "deny:1"},
    MatchCase{"ALL: KNOWN\n", Client("1.2.3.4", "a.b"), "allow:1"},
    MatchCase{"ALL: KNOWN\n", Client("1.2.3.4", "?"), "deny:1"},
    MatchCase{"ALL: KNOWN\n", Client("1.2.3.4", "!"), "deny:1"},
    MatchCase{"ALL: KNOWN\n", Client("unknown", "a.b"), "deny:1"},
    MatchCase{"ALL: UNKNOWN\n", Client("1.2.3.4", "?"), "allow:1"},
    MatchCase{"ALL: UNKNOWN\n", Client("1.2.3.4", "a.b"), "deny:1"},
    MatchCase{"ALL: unknown\n", Client("unknown", "!"), "allow:1"},
    MatchCase{"ALL: PARANOID\n", Client("1.2.3.4", "!"), "allow:1"},
    MatchCase{"ALL: PARANOID\n", Client("1.2.3.4", "a.b"), "deny:1"},
    // @netgroup: membership comes with the name
    MatchCase{"ALL: @ng0 @ng1\n", [] { Req r = Client("1.2.3.4", "h.x"); r.netgroups = 2; return r; }(), "allow:1"},
    MatchCase{"ALL: @ng0\n", [] { Req r = Client("1.2.3.4", "h.x"); r.netgroups = 2; return r; }(), "deny:1"},
    MatchCase{"ALL: @ng0\n", [] { Req r = Client("1.2.3.4", "?"); r.netgroups = 1; return r; }(), "deny:1"},
    // user@host
    MatchCase{"ALL: bob@ALL\n", User("bob"), "allow:1"},
    MatchCase{"ALL: BOB@192.168.\n", User("bob"), "allow:1"},
    MatchCase{"ALL: bob@192.167.\n", User("bob"), "deny:1"},
    MatchCase{"ALL: b?b@ALL\n", User("bob"), "allow:1"},
    MatchCase{"ALL: KNOWN@ALL\n", User("bob"), "allow:1"},
    MatchCase{"ALL: KNOWN@ALL\n", User("?"), "deny:1"},
    MatchCase{"ALL: UNKNOWN@ALL\n", User("?"), "allow:1"},
    MatchCase{"ALL: a_x_b@ALL\n", User("a[x]b"), "allow:1"},   // names are sanitized
    // daemons: names, wildcards, prefixes, suffixes, KNOWN, daemon@host
    MatchCase{"in.fingerd: ALL\n", Daemon("in.fingerd"), "allow:1"},
    MatchCase{"IN.FINGERD: ALL\n", Daemon("in.fingerd"), "allow:1"},
    MatchCase{"in.: ALL\n", Daemon("in.fingerd"), "allow:1"},
    MatchCase{"in.*: ALL\n", Daemon("in.fingerd"), "allow:1"},
    MatchCase{".fingerd: ALL\n", Daemon("in.fingerd"), "allow:1"},
    MatchCase{".f*: ALL\n", Daemon(".foo"), "allow:1"},      // a wildcard, not a suffix
    MatchCase{"KNOWN: ALL\n", Daemon("sshd"), "allow:1"},
    MatchCase{"sshd: ALL\n", Daemon("in.fingerd"), "deny:1"},
    MatchCase{"f_o: ALL\n", Daemon("f$o"), "allow:1"},
    MatchCase{"in.fingerd@10.0.0.1: ALL\n", Server("10.0.0.1"), "allow:1"},
    MatchCase{"in.fingerd@10.0.0.2: ALL\n", Server("10.0.0.1"), "deny:1"},
    MatchCase{"in.fingerd@10.0.0.0/8: ALL\n", Server("10.0.0.1"), "allow:1"},
    MatchCase{"in.fingerd@[::1]: ALL\n", Server("::1"), "allow:1"},
    MatchCase{"in.fingerd@ftp.example.com: ALL\n", Server("10.0.0.1", "FTP.example.com"), "allow:1"},
    MatchCase{"in.fingerd@UNKNOWN: ALL\n", Server("unknown"), "allow:1"},
    // separators, continuation, comments, blank lines, CRLF, odd brackets
    MatchCase{"sshd,in.fingerd\tfoo: 1.1.1.1, 192.168.1.10\n", Client("192.168.1.10"), "allow:1"},
    MatchCase{"# comment\n\n   \nin.fingerd: \\\n 192.168.1.10\n", Client("192.168.1.10"), "allow:4"},
    MatchCase{"in.fingerd: ALL\r\n", Client("192.168.1.10"), "allow:1"},
    MatchCase{"in.fingerd: 1.1.1.1 # 192.168.1.10\n", Client("192.168.1.10"), "allow:1"},   // '#' mid-line is a token
    MatchCase{"ALL: [::1] 192.168.1.10\n", Client("192.168.1.10"), "allow:1"}));

// ---- EXCEPT ------------------------------------------------------------------

struct ExceptCase {
  const char* clients;
  const char* addr;
  bool match;
};

class Except : public ::testing::TestWithParam<ExceptCase> {};

TEST_P(Except, Nesting) {
  const ExceptCase& c = GetParam();
  HostsPolicy p = Policy(std::string("ALL: ") + c.clients + "\n", "ALL: ALL\n");
  EXPECT_EQ(Answer(p, Client(c.addr)), c.match ? "allow:1" : "deny:1") << c.clients << " / " << c.addr;
}

// a EXCEPT b EXCEPT c is a EXCEPT (b EXCEPT c).
INSTANTIATE_TEST_SUITE_P(HostsAccess, Except, ::testing::Values(
    ExceptCase{"10. EXCEPT 10.1.", "10.2.0.1", true},
    ExceptCase{"10. EXCEPT 10.1.", "10.1.0.1", false},
    ExceptCase{"10. EXCEPT 10.1. EXCEPT 10.1.2.3", "10.1.2.3", true},
    ExceptCase{"10. EXCEPT 10.1. EXCEPT 10.1.2.3", "10.1.2.4", false},
    ExceptCase{"10. EXCEPT 10.1. EXCEPT 10.1.2. EXCEPT 10.1.2.3", "10.1.2.3", false},
    ExceptCase{"10. EXCEPT 10.1. EXCEPT 10.1.2. EXCEPT 10.1.2.3", "10.1.2.4", true},
    ExceptCase{"10. except 10.1.", "10.1.0.1", false},
    ExceptCase{"ALL EXCEPT", "10.1.0.1", true},
    ExceptCase{"EXCEPT ALL", "10.1.0.1", false},
    ExceptCase{"11. 10. EXCEPT 9. 10.1.", "10.1.0.1", false},
    ExceptCase{"11. EXCEPT 10. ", "10.1.0.1", false}));

TEST(HostsAccess, ExceptInDaemonList) {
  HostsPolicy p = Policy("ALL EXCEPT in.fingerd: ALL\n", "ALL: ALL\n");
  EXPECT_EQ(Answer(p, Daemon("sshd")), "allow:1");
  EXPECT_EQ(Answer(p, Daemon("in.fingerd")), "deny:1");
}

TEST(HostsAccess, DeepExceptIsIterative) {
  // As deep as a line allows; all levels match, so the answer is the last
  // level's, negated once per EXCEPT.
  for (int n : {150, 151}) {
    std::string l = "ALL: 10.";
    for (int i = 0; i < n; ++i) l += " EXCEPT 10.";
    HostsPolicy p = Policy(l + "\n", "ALL: ALL\n");
    EXPECT_EQ(Answer(p, Client("10.0.0.1")), n % 2 ? "deny:1" : "allow:1") << n;
  }
}

// ---- order and tables ----------------------------------------------------------

TEST(HostsAccess, FirstMatchWins) {
  HostsPolicy p = Policy("sshd: 10.\nALL: 10.0.0.1 : deny\nALL: 10.\n", "ALL: ALL\n");
  EXPECT_EQ(Answer(p, Client("10.0.0.1")), "deny:2");
  EXPECT_EQ(Answer(p, Client("10.0.0.2")), "allow:3");
  EXPECT_EQ(Answer(p, Client("11.0.0.1")), "deny:1");
}

TEST(HostsAccess, MissingFilesAreEmpty) {
  HostsPolicy none = HostsPolicy::Compile(HostsText{}, HostsText{});
  EXPECT_EQ(Answer(none, Client("1.2.3.4")), "allow");
  HostsPolicy deny_only = HostsPolicy::Compile(HostsText{}, HostsText{"d", true, "ALL: 1.2.3.4\n"});
  EXPECT_EQ(Answer(deny_only, Client("1.2.3.4")), "deny:1");
  EXPECT_EQ(Answer(deny_only, Client("1.2.3.5")), "allow");
}

TEST(HostsAccess, AllowAndDenyOptionsOverrideTheTable) {
  HostsPolicy p = Policy("ALL: .bad.domain: DENY\nALL: ALL: ALLOW\n", "ALL: 10.0.0.1 : allow\n");
  EXPECT_EQ(Answer(p, Client("1.2.3.4", "x.bad.domain")), "deny:1");
  EXPECT_EQ(Answer(p, Client("1.2.3.4", "x.good.domain")), "allow:2");
  HostsPolicy q = Policy("", "ALL: 10.0.0.1 : allow\n");
  EXPECT_EQ(Answer(q, Client("10.0.0.1")), "allow:1");
}

// ---- lookups -----------------------------------------------------------------------

TEST(HostsAccess, AddressRulesNeverNeedALookup) {
  HostsPolicy p = Policy("sshd: 10.0.0.0/8 [::1] 192.168. ALL EXCEPT 1.2.3.4\n", "ALL: ALL\n");
  EXPECT_EQ(p.PossibleNeeds(), kNeedNothing);
  EXPECT_EQ(Answer(p, Client("10.1.1.1", "")), "deny:1");
}

TEST(HostsAccess, NamesAreAskedForOnlyWhenReached) {
  HostsPolicy p = Policy("ALL: 10.\nALL: .example.com\n", "ALL: ALL\n");
  EXPECT_EQ(p.PossibleNeeds(), kNeedClientName);
  EXPECT_EQ(Answer(p, Client("10.1.1.1", "")), "allow:1");        // decided before the name rule
  EXPECT_EQ(Answer(p, Client("11.1.1.1", "")), "need:client");
  EXPECT_EQ(Answer(p, Client("11.1.1.1", "a.example.com")), "allow:2");
  EXPECT_EQ(Answer(p, Client("11.1.1.1", "?")), "deny:1");         // a timeout is "unknown"
}

TEST(HostsAccess, AllNeedsNoNameButKnownDoes) {
  HostsPolicy p = Policy("ALL: ALL\n");
  EXPECT_EQ(p.PossibleNeeds(), kNeedNothing);
  HostsPolicy k = Policy("ALL: KNOWN\n");
  EXPECT_EQ(Answer(k, Client("1.1.1.1", "")), "need:client");
  EXPECT_EQ(Answer(k, Client("unknown", "")), "allow");           // no address: no lookup needed
}

TEST(HostsAccess, UserIsAskedForOnlyWhenTheHostMatches) {
  HostsPolicy p = Policy("ALL: bob@10.\n", "ALL: ALL\n");
  EXPECT_EQ(p.PossibleNeeds(), kNeedUser);
  EXPECT_EQ(Answer(p, User("", "11.0.0.1")), "deny:1");
  EXPECT_EQ(Answer(p, User("", "10.0.0.1")), "need:user");
  EXPECT_EQ(Answer(p, User("bob", "10.0.0.1")), "allow:1");
}

TEST(HostsAccess, ServerNameLookup) {
  HostsPolicy p = Policy("in.fingerd@ftp.example.com: ALL\n", "ALL: ALL\n");
  EXPECT_EQ(p.PossibleNeeds(), kNeedServerName);
  EXPECT_EQ(Answer(p, Server("10.0.0.1", "")), "need:server");
  EXPECT_EQ(Answer(p, Daemon("sshd")), "deny:1");   // other daemons: never asked
}

TEST(HostsAccess, NetgroupsAreCollected) {
  HostsPolicy p = Policy("ALL: @a @b\nsshd: @a\n");
  ASSERT_EQ(p.netgroups().size(), 2u);
  EXPECT_EQ(p.netgroups()[0], "a");
  EXPECT_EQ(p.netgroups()[1], "b");
  EXPECT_EQ(p.PossibleNeeds(), kNeedClientName);
}

// ---- /path lists ------------------------------------------------------------------------

TEST(HostsAccess, PathLists) {
  HostsLists lists;
  lists["/etc/trusted"] = std::string("10.0.0.1\n  192.168.\t/etc/more\n");
  lists["/etc/more"] = std::string("[::1] .example.com");
  lists["/etc/gone"] = std::nullopt;
  HostsPolicy p = Policy("ALL: /etc/trusted /etc/gone\n", "ALL: ALL\n", lists);
  EXPECT_TRUE(p.MissingLists().empty());
  EXPECT_EQ(Answer(p, Client("10.0.0.1")), "allow:1");
  EXPECT_EQ(Answer(p, Client("192.168.3.3")), "allow:1");
  EXPECT_EQ(Answer(p, Client("::1")), "allow:1");
  EXPECT_EQ(Answer(p, Client("10.0.0.2", "x.example.com")), "allow:1");
  EXPECT_EQ(Answer(p, Client("10.0.0.2", "")), "need:client");
  EXPECT_EQ(Answer(p, Client("10.0.0.2", "?")), "deny:1");
}

TEST(HostsAccess, PathListsNotSuppliedAreReported) {
  HostsLists lists;
  lists["/a"] = std::string("/b /c 1.1.1.1");
  HostsPolicy p = Policy("ALL: /a\n", "", lists);
  EXPECT_EQ(p.MissingLists(), (std::vector<std::string>{"/b", "/c"}));
  EXPECT_EQ(Answer(p, Client("1.1.1.1")), "allow:1");
}

TEST(HostsAccess, SelfNamingListIsCut) {
  HostsLists lists;
  lists["/a"] = std::string("/a 1.1.1.1 /a");
  HostsPolicy p = Policy("ALL: /a\n", "ALL: ALL\n", lists);
  EXPECT_FALSE(p.errors().empty());
  EXPECT_EQ(Answer(p, Client("1.1.1.1")), "allow:1");
  EXPECT_EQ(Answer(p, Client("1.1.1.2")), "deny:1");
}

// ---- errors, with file:line ---------------------------------------------------------------

struct ErrorCase {
  const char* allow;
  int line;
  const char* contains;
};

class Errors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(Errors, NameFileAndLine) {
  const ErrorCase& c = GetParam();
  HostsPolicy p = Policy(c.allow);
  ASSERT_FALSE(p.errors().empty()) << c.allow;
  const HostsError& e = p.errors()[0];
  EXPECT_EQ(e.path, "/etc/hosts.allow");
  EXPECT_EQ(e.line, c.line);
  EXPECT_NE(e.message.find(c.contains), std::string::npos) << e.ToString();
  EXPECT_EQ(e.ToString().rfind("/etc/hosts.allow:" + std::to_string(c.line) + ": ", 0), 0u);
}

INSTANTIATE_TEST_SUITE_P(HostsAccess, Errors, ::testing::Values(
    ErrorCase{"ALL: ALL\nsshd 10.0.0.1\n", 2, "missing ':'"},
    ErrorCase{"# x\nALL: 1.2.3.0/33\n", 2, "bad net/mask"},
    ErrorCase{"ALL: [::1]/129\n", 1, "bad [net]/prefix"},
    ErrorCase{"ALL: ALL: bogus\n", 1, "bad option name"},
    ErrorCase{"ALL: ALL: allow: spawn x\n", 1, "must be at end"},
    ErrorCase{"ALL: ALL\nALL: ALL", 2, "missing newline"},
    ErrorCase{"\n\nALL: ALL\\\n", 3, "missing newline"}));

TEST(HostsAccess, OverlongLineEndsTheFile) {
  std::string l = "sshd: 1.2.3.4";
  std::string ok = l + std::string(kHostsMaxLine - l.size(), ' ') + "\n";
  std::string bad = l + std::string(kHostsMaxLine - l.size() + 1, ' ') + "\n";
  Req r = Daemon("sshd");
  r.client = "1.2.3.4";
  EXPECT_EQ(Answer(Policy(ok + "ALL: ALL\n"), r), "allow:1");
  // In hosts.allow: the scan goes on with hosts.deny.
  HostsPolicy a = Policy(bad + "ALL: ALL\n", "ALL: 1.2.3.5\n");
  ASSERT_EQ(a.errors().size(), 1u);
  EXPECT_NE(a.errors()[0].message.find("too long"), std::string::npos);
  EXPECT_EQ(Answer(a, r), "allow");
  EXPECT_EQ(Answer(a, Client("1.2.3.5")), "deny:1");
  // In hosts.deny: whatever no earlier rule matched is denied.
  HostsPolicy d = Policy("", "ALL: 9.9.9.9\n" + bad + "ALL: 1.1.1.1 : allow\n");
  EXPECT_EQ(Answer(d, r), "deny:2");
  EXPECT_EQ(d.Check(Make(r)).rule->broken, true);
}

TEST(HostsAccess, LineLimitCountsContinuations) {
  std::string a(1500, ' '), b(600, ' ');
  HostsPolicy p = Policy("ALL: 1.2.3.4" + a + "\\\n" + b + "\nALL: ALL\n", "ALL: ALL\n");
  EXPECT_EQ(Answer(p, Client("1.2.3.4")), "deny:1");
}

TEST(HostsAccess, BadOptionsDenyAndRunNothing) {
  HostsPolicy p = Policy("ALL: 10.: spawn echo hi : umask 999\nALL: ALL\n");
  HostsVerdict v = p.Check(Make(Client("10.0.0.1")));
  EXPECT_EQ(v.kind, Kind::kDeny);
  ASSERT_NE(v.rule, nullptr);
  EXPECT_TRUE(v.rule->bad_options);
  EXPECT_FALSE(v.Twist());
  EXPECT_EQ(Answer(p, Client("11.0.0.1")), "allow:2");
}

TEST(HostsAccess, TwistIsDelegated) {
  HostsPolicy p = Policy("ALL: ALL : twist /bin/echo 421 go away\n");
  HostsVerdict v = p.Check(Make(Client("10.0.0.1")));
  EXPECT_EQ(v.kind, Kind::kAllow);
  EXPECT_TRUE(v.Twist());
}

// ---- options ------------------------------------------------------------------------------

struct OptionCase {
  const char* text;
  bool ok;
  std::vector<HostsOption> want;
};

bool Same(const HostsOption& a, const HostsOption& b) {
  return a.kind == b.kind && a.value == b.value && a.name == b.name && a.number == b.number &&
         a.facility == b.facility;
}

class Options : public ::testing::TestWithParam<OptionCase> {};

TEST_P(Options, Parse) {
  const OptionCase& c = GetParam();
  std::vector<HostsOption> got;
  std::string err;
  bool ok = ParseHostsOptions(c.text, &got, &err);
  EXPECT_EQ(ok, c.ok) << c.text << ": " << err;
  if (!c.ok) {
    EXPECT_FALSE(err.empty());
    return;
  }
  ASSERT_EQ(got.size(), c.want.size()) << c.text;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(Same(got[i], c.want[i])) << c.text << " #" << i;
}

using K = HostsOptionKind;
HostsOption O(K k, std::string v = "", std::string n = "", int num = 0, int fac = -1) {
  return HostsOption{k, std::move(v), std::move(n), num, fac};
}

INSTANTIATE_TEST_SUITE_P(HostsAccess, Options, ::testing::Values(
    OptionCase{" allow", true, {O(K::kAllow)}},
    OptionCase{"DENY ", true, {O(K::kDeny)}},
    OptionCase{"allow=", true, {O(K::kAllow)}},
    OptionCase{"spawn (/usr/sbin/safe_finger -l @%h | /usr/bin/mail root) &", true,
               {O(K::kSpawn, "(/usr/sbin/safe_finger -l @%h | /usr/bin/mail root) &")}},
    OptionCase{"spawn =  echo a\\:b : twist x", true, {O(K::kSpawn, "echo a:b"), O(K::kTwist, "x")}},
    OptionCase{"spawn a \\\\: allow", true, {O(K::kSpawn, "a \\: allow")}},
    OptionCase{"banners /etc/banners", true, {O(K::kBanners, "/etc/banners")}},
    OptionCase{"setenv  PATH   /bin  /usr/bin  ", true, {O(K::kSetenv, "/bin  /usr/bin", "PATH")}},
    OptionCase{"setenv X", true, {O(K::kSetenv, "", "X")}},
    OptionCase{"umask 022", true, {O(K::kUmask, "", "", 022)}},
    OptionCase{"user nobody", true, {O(K::kUser, "nobody")}},
    OptionCase{"user nobody.kmem", true, {O(K::kUser, "nobody", "kmem")}},
    OptionCase{"nice", true, {O(K::kNice, "", "", 10)}},
    OptionCase{"nice -5", true, {O(K::kNice, "", "", -5)}},
    OptionCase{"severity mail.info", true, {O(K::kSeverity, "", "", LOG_INFO, LOG_MAIL)}},
    OptionCase{"severity NOTICE", true, {O(K::kSeverity, "", "", LOG_NOTICE)}},
    OptionCase{"keepalive", true, {O(K::kKeepalive)}},
    OptionCase{"linger 5", true, {O(K::kLinger, "", "", 5)}},
    OptionCase{"rfc931", true, {O(K::kRfc931, "", "", 10)}},
    OptionCase{"rfc931 3", true, {O(K::kRfc931, "", "", 3)}},
    OptionCase{"", false, {}},
    OptionCase{"spawn x :", false, {}},
    OptionCase{"bogus", false, {}},
    OptionCase{"aclexec /bin/true", false, {}},   // Debian's extension: not supported
    OptionCase{"allow: spawn x", false, {}},
    OptionCase{"twist x: allow", false, {}},
    OptionCase{"allow extra", false, {}},
    OptionCase{"keepalive 5", false, {}},
    OptionCase{"spawn", false, {}},
    OptionCase{"banners", false, {}},
    OptionCase{"setenv x=y", false, {}},
    OptionCase{"umask 999", false, {}},
    OptionCase{"umask 0x7", false, {}},
    OptionCase{"umask 1777", false, {}},
    OptionCase{"nice x", false, {}},
    OptionCase{"nice 5 6", false, {}},
    OptionCase{"severity warn", false, {}},
    OptionCase{"severity syslog.info", false, {}},
    OptionCase{"severity auth.", false, {}},
    OptionCase{"linger", false, {}},
    OptionCase{"linger -1", false, {}},
    OptionCase{"rfc931 0", false, {}},
    OptionCase{"rfc931 5x", false, {}}));

// ---- %-expansion ----------------------------------------------------------------------------

TEST(HostsAccess, PercentExpansion) {
  HostsRequest r;
  r.daemon = "in.fingerd";
  r.client.addr = *HostAddr::Parse("192.168.1.10");
  r.client.port = 4321;
  r.server.addr = *HostAddr::Parse("10.0.0.1");
  r.server.port = 79;
  r.client.name_state = Lookup::kFound;
  r.client.name = "pc.example.com";
  r.server.name_state = Lookup::kFailed;
  r.user_state = Lookup::kFound;
  r.user = "bob";
  EXPECT_EQ(*ExpandPercent("%a %A %c %d %h %H %n %N %p %r %R %s %u %% %z%", r, 42),
            "192.168.1.10 10.0.0.1 bob@pc.example.com in.fingerd pc.example.com 10.0.0.1 pc.example.com unknown 42 "
            "4321 79 in.fingerd@10.0.0.1 bob % %");
  // Without a name or user: addresses stand in, "unknown" where nothing can.
  r.client.name_state = Lookup::kNotDone;
  r.user_state = Lookup::kFailed;
  EXPECT_EQ(*ExpandPercent("%c|%h|%n|%u", r, 1), "192.168.1.10|192.168.1.10|unknown|unknown");
  r.client.name_state = Lookup::kParanoid;
  EXPECT_EQ(*ExpandPercent("%h %n", r, 1), "192.168.1.10 paranoid");
  // v4-mapped clients print as the peer sent them
  r.client.addr = *HostAddr::Parse("::ffff:192.168.1.10");
  EXPECT_EQ(*ExpandPercent("%a", r, 1), "::ffff:192.168.1.10");
  EXPECT_EQ(*ExpandOption("  %z echo %d  ", r, 1), "echo in.fingerd");
}

TEST(HostsAccess, ExpansionIsSanitizedButTheTemplateIsNot) {
  HostsRequest r;
  r.daemon = "d";
  r.user_state = Lookup::kFound;
  r.user = "x;rm -rf /`id`$(id)|&<>'\"\\*?[]{}~^#\x01\xff";
  r.client.name_state = Lookup::kFound;
  r.client.name = "evil;name$";
  EXPECT_EQ(*ExpandPercent("echo '%u' %n; true", r, 1), "echo 'x_rm_-rf_/_id___id___________________' evil_name_; true");
  // Exactly libwrap's ok_chars survive.
  std::string all;
  for (int c = 1; c < 256; ++c) all += static_cast<char>(c);
  r.user = all;
  std::string kept, expanded = *ExpandPercent("%u", r, 1);
  for (char c : expanded)
    if (c != '_') kept += c;
  EXPECT_EQ(kept, "!%+,-./0123456789:=@ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
}

TEST(HostsAccess, ExpansionIsBounded) {
  HostsRequest r;
  std::string big(300, 'a');
  r.daemon = big;
  std::string t;
  for (int i = 0; i < 40; ++i) t += "%d";
  EXPECT_FALSE(ExpandPercent(t, r, 1).has_value());
  EXPECT_TRUE(ExpandPercent("%d", r, 1).has_value());
}

TEST(HostsAccess, PercentNeeds) {
  EXPECT_EQ(PercentNeeds("%a %h %c %s %d %p"), kNeedNothing);
  EXPECT_EQ(PercentNeeds("%n"), kNeedClientName);
  EXPECT_EQ(PercentNeeds("%N %u"), kNeedServerName | kNeedUser);
  EXPECT_EQ(PercentNeeds("%%n"), kNeedNothing);
}

// ---- addresses -------------------------------------------------------------------------------

TEST(HostsAccess, HostAddr) {
  EXPECT_EQ(HostAddr::Parse("1.2.3.4")->ToString(), "1.2.3.4");
  EXPECT_EQ(HostAddr::Parse("::FFFF:1.2.3.4")->family, HostAddr::Family::kV4);
  EXPECT_EQ(HostAddr::Parse("2001:DB8::1")->ToString(), "2001:db8::1");
  EXPECT_FALSE(HostAddr::Parse("1.2.3").has_value());
  EXPECT_FALSE(HostAddr::Parse("host").has_value());
  EXPECT_EQ(HostAddr{}.ToString(), "unknown");
  sockaddr_in6 s6{};
  s6.sin6_family = AF_INET6;
  s6.sin6_addr.s6_addr[15] = 1;
  EXPECT_EQ(HostAddr::FromSockaddr(reinterpret_cast<sockaddr*>(&s6), sizeof s6).ToString(), "::1");
  EXPECT_EQ(HostAddr::FromSockaddr(reinterpret_cast<sockaddr*>(&s6), 4).family, HostAddr::Family::kUnknown);
}

}  // namespace
