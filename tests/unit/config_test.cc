// Unit tests of the inetd.conf(5) parser (privileged/config.cc): every field,
// every error, and the real configuration files in tests/unit/corpus/ with the
// outcomes tests/unit/corpus/README.md expects. Users on the Debian test
// machine: root, daemon, nobody (group nogroup); groups tty and staff exist.
#include "privileged/config.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#ifndef CORPUS_DIR
#error "CORPUS_DIR must name tests/unit/corpus"
#endif

namespace inetd::priv {
namespace {

Config Parse(std::string_view text, bool check_programs = false, ParseOptions opts = {}) {
  opts.check_programs = check_programs;
  return ParseConfig(text, "test.conf", opts);
}

// "0.0.0.0:7", "[::1]:7", or the unix path.
std::string AddrString(const ServiceConfig& s) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (s.family == AF_UNIX) return reinterpret_cast<const sockaddr_un*>(&s.addr)->sun_path;
  if (s.addrlen == 0) return "";
  if (s.family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&s.addr);
    EXPECT_EQ(s.addrlen, sizeof(sockaddr_in));
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(sin->sin_port));
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&s.addr);
  EXPECT_EQ(s.addrlen, sizeof(sockaddr_in6));
  inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(ntohs(sin6->sin6_port));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Corpus(const std::string& name) { return std::string(CORPUS_DIR) + "/" + name; }

ParseOptions Unchecked() {
  ParseOptions opts;
  opts.check_programs = false;
  return opts;
}

bool UserExists(const char* name) { return getpwnam(name) != nullptr; }
bool ServiceExists(const char* name, const char* proto) {
  return getservbyname(name, proto) != nullptr;
}
bool Executable(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// The line number of the `nth` line that starts with `prefix`.
int LineOf(const std::string& text, const std::string& prefix, int nth = 1) {
  std::istringstream in(text);
  std::string line;
  for (int no = 1; std::getline(in, line); ++no)
    if (line.rfind(prefix, 0) == 0 && --nth == 0) return no;
  ADD_FAILURE() << "no line starts with " << prefix;
  return -1;
}

// line -> field of the error on it.
std::map<int, std::string> ErrorsByLine(const Config& c) {
  std::map<int, std::string> m;
  for (const ConfigError& e : c.errors) {
    EXPECT_EQ(m.count(e.line), 0u) << "two errors on line " << e.line;
    m[e.line] = e.field;
  }
  return m;
}

// ---------------------------------------------------------------------------
// Entries that parse: one row per entry, checking the fields it names.

struct Want {
  const char* text;
  std::optional<std::string> name = {}, proto = {};
  std::optional<SockType> type = {};
  std::optional<int> family = {}, ipproto = {};
  std::optional<bool> v6only = {};
  std::optional<std::string> addr = {};
  std::optional<bool> wait = {};
  std::optional<int> max_child = {}, per_ip_rate = {}, per_ip_child = {};
  std::optional<std::string> user = {}, group = {}, login_class = {};
  std::optional<uid_t> uid = {};
  std::optional<gid_t> gid = {};
  std::optional<std::vector<gid_t>> groups = {};
  std::optional<bool> internal = {};
  std::optional<std::string> builtin = {}, program = {};
  std::optional<std::vector<std::string>> argv = {};
  std::optional<bool> tcpmux = {}, tcpmux_plus = {};
  std::optional<uid_t> sock_uid = {};
  std::optional<gid_t> sock_gid = {};
  std::optional<mode_t> sock_mode = {};
  std::optional<std::string> label = {};
};

using Args = std::vector<std::string>;
constexpr auto kStream = SockType::kStream;
constexpr auto kDgram = SockType::kDgram;

const Want kGood[] = {
    // Fields one by one, on the simplest entries.
    {.text = "echo stream tcp nowait root internal",
     .name = "echo",
     .proto = "tcp",
     .type = kStream,
     .family = AF_INET,
     .ipproto = IPPROTO_TCP,
     .v6only = false,
     .addr = "0.0.0.0:7",
     .wait = false,
     .max_child = -1,
     .per_ip_rate = -1,
     .per_ip_child = -1,
     .user = "root",
     .group = "",
     .login_class = "daemon",
     .uid = 0,
     .gid = 0,
     .groups = std::vector<gid_t>{0},
     .internal = true,
     .builtin = "echo",
     .program = "",
     .argv = Args{},
     .tcpmux = false,
     .label = "echo/tcp"},
    // Built-ins always run nowait (FreeBSD), so "wait" sets no max-child.
    {.text = "echo dgram udp wait root internal",
     .type = kDgram,
     .ipproto = IPPROTO_UDP,
     .addr = "0.0.0.0:7",
     .wait = false,
     .max_child = -1,
     .builtin = "echo",
     .label = "echo/udp"},
    {.text = "daytime stream tcp6 nowait root internal",
     .family = AF_INET6,
     .v6only = true,
     .addr = "[::]:13",
     .builtin = "daytime"},
    {.text = "time dgram udp6 wait root internal",
     .family = AF_INET6,
     .v6only = true,
     .addr = "[::]:37",
     .builtin = "time",
     .label = "time/udp6"},
    {.text = "chargen stream tcp46 nowait root internal",
     .family = AF_INET6,
     .v6only = false,
     .addr = "[::]:19",
     .builtin = "chargen"},
    {.text = "discard dgram udp4 wait root internal",
     .family = AF_INET,
     .addr = "0.0.0.0:9",
     .builtin = "discard"},
    {.text = "auth stream tcp nowait root internal auth -r -t 30",
     .builtin = "auth",
     .argv = Args{"auth", "-r", "-t", "30"}},
    // An alias of a built-in's service ("ident" is "auth" in /etc/services).
    {.text = "ident stream tcp nowait root internal",
     .name = "ident",
     .addr = "0.0.0.0:113",
     .builtin = "auth",
     .label = "ident/tcp"},
    {.text = "tcpmux stream tcp nowait root internal",
     .addr = "0.0.0.0:1",
     .builtin = "tcpmux",
     .tcpmux = false},
    // External programs, argv as written.
    {.text = "ftp stream tcp nowait root /usr/libexec/ftpd ftpd -l",
     .addr = "0.0.0.0:21",
     .wait = false,
     .internal = false,
     .builtin = "",
     .program = "/usr/libexec/ftpd",
     .argv = Args{"ftpd", "-l"}},
    {.text = "ftp stream tcp6 nowait root /usr/libexec/ftpd ftpd -l",
     .family = AF_INET6,
     .v6only = true,
     .addr = "[::]:21"},
    {.text = "tftp dgram udp wait root /usr/libexec/tftpd tftpd -s /tftpboot",
     .type = kDgram,
     .ipproto = IPPROTO_UDP,
     .addr = "0.0.0.0:69",
     .wait = true,
     .max_child = 1,
     .argv = Args{"tftpd", "-s", "/tftpboot"},
     .label = "tftp/udp"},
    {.text = "tftp dgram udp46 wait root /usr/libexec/tftpd tftpd",
     .family = AF_INET6,
     .v6only = false},
    // Stream wait: the child gets the listening socket.
    {.text = "auth stream tcp wait root /usr/local/sbin/identd identd -w",
     .wait = true,
     .max_child = 1},
    // Limits.
    {.text = "finger stream tcp nowait/3/10 nobody /usr/libexec/fingerd fingerd -k -s",
     .max_child = 3,
     .per_ip_rate = 10,
     .per_ip_child = -1,
     .user = "nobody",
     .uid = 65534,
     .gid = 65534,
     .argv = Args{"fingerd", "-k", "-s"}},
    {.text = "finger stream tcp nowait/5/20/2 nobody /x x",
     .max_child = 5,
     .per_ip_rate = 20,
     .per_ip_child = 2},
    {.text = "finger stream tcp nowait/0 nobody /x x", .max_child = 0, .per_ip_rate = -1},
    {.text = "finger stream tcp nowait/32767/0/0 nobody /x x",
     .max_child = 32767,
     .per_ip_rate = 0,
     .per_ip_child = 0},
    {.text = "tftp dgram udp wait/4 root /x x", .wait = true, .max_child = 4},
    {.text = "finger stream tcp nowait/400 root /usr/sbin/fingerd fingerd", .max_child = 400},
    // user[:group][/login-class].
    {.text = "echo stream tcp nowait daemon:nogroup /x x",
     .user = "daemon",
     .group = "nogroup",
     .login_class = "daemon",
     .uid = 1,
     .gid = 65534},
    {.text = "echo stream tcp nowait nobody/staff /x x",
     .user = "nobody",
     .group = "",
     .login_class = "staff",
     .uid = 65534,
     .gid = 65534},
    {.text = "echo stream tcp nowait root:daemon/other /x x",
     .user = "root",
     .group = "daemon",
     .login_class = "other",
     .uid = 0,
     .gid = 1,
     .groups = std::vector<gid_t>{1}},  // initgroups(user, group): root is in no other group
    {.text = "echo stream tcp nowait 1:1 /x x", .user = "1", .group = "1", .uid = 1, .gid = 1},
    {.text = "echo stream tcp nowait 0 /x x", .user = "0", .uid = 0, .gid = 0},
    {.text = "echo stream tcp nowait root:5 /x x", .group = "5", .gid = 5},
    // A uid with no passwd entry: the group must be named; no group list.
    {.text = "echo stream tcp nowait 12345:100 /x x",
     .uid = 12345,
     .gid = 100,
     .groups = std::vector<gid_t>{100}},
    // OpenBSD's "user.group".
    {.text = "talk dgram udp wait nobody.tty /usr/sbin/in.talkd in.talkd",
     .user = "nobody",
     .group = "tty",
     .uid = 65534,
     .gid = 5},
    // Numeric ports (an extension).
    {.text = "8080 stream tcp nowait nobody /bin/cat cat",
     .name = "8080",
     .addr = "0.0.0.0:8080",
     .label = "8080/tcp"},
    {.text = "65535 dgram udp wait nobody /bin/cat cat", .addr = "0.0.0.0:65535"},
    {.text = "7 stream tcp nowait root internal", .addr = "0.0.0.0:7", .builtin = "echo"},
    // On a port no built-in owns, argv[0] names the built-in.
    {.text = "7007 stream tcp nowait root internal chargen", .addr = "0.0.0.0:7007",
     .builtin = "chargen"},
    {.text = "7007 dgram udp wait root internal time", .addr = "0.0.0.0:7007", .builtin = "time"},
    // The service name wins over argv[0] when it names a built-in.
    {.text = "echo stream tcp nowait root internal chargen", .builtin = "echo"},
    // No arguments: argv[0] is the program's base name.
    {.text = "git stream tcp nowait nobody /usr/bin/git",
     .program = "/usr/bin/git",
     .argv = Args{"git"}},
    // Quoting groups words, as FreeBSD's inetd does.
    {.text = "echo stream tcp nowait root /bin/sh sh -c \"echo hello  world\" 'a b' \"\"",
     .argv = Args{"sh", "-c", "echo hello  world", "a b", ""}},
    // Twenty arguments is the most (FreeBSD's MAXARGV).
    {.text = "echo stream tcp nowait root /x 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
     .argv = Args{"1",  "2",  "3",  "4",  "5",  "6",  "7",  "8",  "9",  "10",
                  "11", "12", "13", "14", "15", "16", "17", "18", "19", "20"}},
    // Runs of tabs and spaces; CRLF line ends.
    {.text = "echo \t\t stream\t tcp  \tnowait\t\troot\t/bin/cat   cat  -u\t",
     .argv = Args{"cat", "-u"}},
    {.text = "echo stream tcp nowait root /bin/cat cat -u\r\n", .argv = Args{"cat", "-u"}},
    // tcpmux services: no socket of their own, always nowait.
    {.text = "tcpmux/foo stream tcp nowait root /usr/bin/foo",
     .name = "foo",
     .addr = "",
     .program = "/usr/bin/foo",
     .argv = Args{"foo"},
     .tcpmux = true,
     .tcpmux_plus = false,
     .label = "tcpmux/foo/tcp"},
    {.text = "tcpmux/+Hello stream tcp6 wait root /usr/bin/hello hello",
     .name = "Hello",
     .wait = false,
     .max_child = -1,
     .tcpmux = true,
     .tcpmux_plus = true,
     .label = "tcpmux/+Hello/tcp6"},
    // Unix sockets.
    {.text = "/run/foo.sock stream unix nowait root /bin/cat cat",
     .name = "/run/foo.sock",
     .proto = "unix",
     .type = kStream,
     .family = AF_UNIX,
     .ipproto = 0,
     .addr = "/run/foo.sock",
     .sock_uid = 0,
     .sock_gid = 0,
     .sock_mode = 0200,
     .label = "/run/foo.sock/unix"},
    {.text = ":daemon:nogroup:0660:/run/x:y.sock dgram unix wait root /bin/cat cat",
     .name = "/run/x:y.sock",
     .type = kDgram,
     .family = AF_UNIX,
     .addr = "/run/x:y.sock",
     .wait = true,
     .sock_uid = 1,
     .sock_gid = 65534,
     .sock_mode = 0660},
    {.text = ":1:5:666:/run/s seqpacket unix nowait root /bin/cat cat",
     .type = SockType::kSeqpacket,
     .sock_uid = 1,
     .sock_gid = 5,
     .sock_mode = 0666},
    // OpenBSD host prefixes: the address's family decides for plain tcp/udp.
    {.text = "127.0.0.1:echo stream tcp nowait root internal",
     .name = "echo",
     .family = AF_INET,
     .addr = "127.0.0.1:7",
     .label = "echo/tcp"},
    {.text = "[::1]:echo stream tcp nowait root internal",
     .family = AF_INET6,
     .v6only = true,
     .addr = "[::1]:7"},
    {.text = "::1:echo stream tcp6 nowait root internal",
     .family = AF_INET6,
     .v6only = true,
     .addr = "[::1]:7"},
    {.text = "[::1]:echo stream tcp46 nowait root internal",
     .family = AF_INET6,
     .v6only = false,
     .addr = "[::1]:7"},
    {.text = "localhost:echo stream tcp4 nowait root internal",
     .family = AF_INET,
     .addr = "127.0.0.1:7"},
    {.text = "*:echo stream tcp6 nowait root internal", .family = AF_INET6, .addr = "[::]:7"},
    {.text = "*:echo stream tcp nowait root internal", .family = AF_INET, .addr = "0.0.0.0:7"},
    {.text = "127.0.0.1,127.0.0.1:echo stream tcp nowait root internal", .addr = "127.0.0.1:7"},
};

void PrintTo(const Want& w, std::ostream* os) { *os << w.text; }

class GoodEntry : public testing::TestWithParam<Want> {};

TEST_P(GoodEntry, Parses) {
  const Want& w = GetParam();
  Config c = Parse(w.text);
  for (const ConfigError& e : c.errors) ADD_FAILURE() << e.ToString();
  ASSERT_EQ(c.services.size(), 1u);
  const ServiceConfig& s = c.services[0];
  EXPECT_EQ(s.file, "test.conf");
  EXPECT_EQ(s.line, 1);
#define CHECK_FIELD(f)          \
  if (w.f) {                    \
    EXPECT_EQ(s.f, *w.f) << #f; \
  }
  CHECK_FIELD(name);
  CHECK_FIELD(proto);
  CHECK_FIELD(type);
  CHECK_FIELD(family);
  CHECK_FIELD(ipproto);
  CHECK_FIELD(v6only);
  CHECK_FIELD(wait);
  CHECK_FIELD(max_child);
  CHECK_FIELD(per_ip_rate);
  CHECK_FIELD(per_ip_child);
  CHECK_FIELD(user);
  CHECK_FIELD(group);
  CHECK_FIELD(login_class);
  CHECK_FIELD(uid);
  CHECK_FIELD(gid);
  CHECK_FIELD(groups);
  CHECK_FIELD(internal);
  CHECK_FIELD(builtin);
  CHECK_FIELD(program);
  CHECK_FIELD(argv);
  CHECK_FIELD(tcpmux);
  CHECK_FIELD(tcpmux_plus);
  CHECK_FIELD(sock_uid);
  CHECK_FIELD(sock_gid);
  CHECK_FIELD(sock_mode);
#undef CHECK_FIELD
  if (w.addr) {
    EXPECT_EQ(AddrString(s), *w.addr);
  }
  if (w.label) {
    EXPECT_EQ(ServiceLabel(s), *w.label);
  }
}

INSTANTIATE_TEST_SUITE_P(Config, GoodEntry, testing::ValuesIn(kGood));

// ---------------------------------------------------------------------------
// Entries that fail: the field named and a part of the message.

struct Bad {
  const char* text;
  const char* field;
  const char* message;  // a substring of the message
  bool check_programs = false;
  bool dash_a_v4_only = false;  // as if -a named only an IPv4 address
};

const Bad kBad[] = {
    // Missing fields.
    {"echo", "socket-type", "missing"},
    {"echo stream", "protocol", "missing"},
    {"echo stream tcp", "wait", "missing"},
    {"echo stream tcp nowait", "user", "missing"},
    {"echo stream tcp nowait root", "server-program", "missing"},
    {":", "socket-type", "missing"},
    // service
    {"nosuchservice stream tcp nowait root /bin/cat cat", "service",
     "unknown service \"nosuchservice\""},
    {"tftp stream tcp nowait root /bin/cat cat", "service", "unknown service"},  // tftp is udp only
    {"0 stream tcp nowait root /bin/cat cat", "service", "unknown service"},
    {"65536 stream tcp nowait root /bin/cat cat", "service", "unknown service"},
    {"-7 stream tcp nowait root /bin/cat cat", "service", "unknown service"},
    {"rpc/foo stream tcp nowait root /bin/cat cat", "protocol", "RPC services are not supported"},
    // socket-type
    {"echo raw tcp nowait root internal", "socket-type", "raw sockets are not supported"},
    {"echo rdm tcp nowait root internal", "socket-type", "unknown socket type \"rdm\""},
    {"echo Stream tcp nowait root internal", "socket-type", "unknown socket type"},
    {"echo dgram tcp nowait root internal", "socket-type", "does not go with protocol \"tcp\""},
    {"echo stream udp nowait root internal", "socket-type", "does not go with"},
    {"echo seqpacket tcp nowait root internal", "socket-type", "does not go with"},
    {"echo stream udp6 nowait root internal", "socket-type", "does not go with"},
    // protocol
    {"echo stream sctp nowait root internal", "protocol", "unknown protocol \"sctp\""},
    {"echo stream tcp64 nowait root internal", "protocol", "unknown protocol"},
    {"rstatd/1-3 dgram rpc/udp wait root /usr/libexec/rpc.rstatd rpc.rstatd", "protocol",
     "RPC services are not supported"},
    {"echo stream tcp6 nowait root internal", "protocol", "-a gave no IPv6 address for tcp6", false,
     true},
    // wait
    {"echo stream tcp waiting root internal", "wait", "expected wait or nowait"},
    {"echo stream tcp Nowait root internal", "wait", "expected wait or nowait"},
    {"echo stream tcp nowait/32768 root internal", "wait", "bad max-child \"32768\""},
    {"echo stream tcp nowait/-1 root internal", "wait", "bad max-child"},
    {"echo stream tcp nowait/+1 root internal", "wait", "bad max-child"},
    {"echo stream tcp nowait/1x root internal", "wait", "bad max-child"},
    {"echo stream tcp nowait/ root internal", "wait", "bad max-child"},
    {"echo stream tcp nowait/1/2/3/4 root internal", "wait", "too many limits"},
    {"echo stream tcp nowait/1/-5 root internal", "wait", "bad max-connections-per-ip-per-minute"},
    {"echo stream tcp nowait/1/2/99999999999 root internal", "wait", "bad max-child-per-ip"},
    {"echo stream tcp nowait/1//3 root internal", "wait", "bad max-connections-per-ip-per-minute"},
    // OpenBSD's per-minute rate has no per-entry field: refused, saying what to write.
    {"swat stream tcp nowait.400 root /usr/sbin/swat swat", "wait",
     "write \"nowait\" and set the rate with -R"},
    {"tftp dgram udp wait.10 root /x x", "wait", "OpenBSD's \"wait.10\""},
    // user / group / login-class
    {"echo stream tcp nowait nosuchuser internal", "user", "unknown user \"nosuchuser\""},
    {"echo stream tcp nowait tty:tty internal", "user", "unknown user \"tty\""},
    {"echo stream tcp nowait nosuchuser.tty internal", "user", "unknown user \"nosuchuser\""},
    {"echo stream tcp nowait :root internal", "user", "empty user name"},
    {"echo stream tcp nowait /daemon internal", "user", "empty user name"},
    {"echo stream tcp nowait -1 internal", "user", "unknown user"},
    {"echo stream tcp nowait 4294967295 internal", "user", "unknown user"},
    {"echo stream tcp nowait root:nosuchgroup internal", "group", "unknown group \"nosuchgroup\""},
    {"echo stream tcp nowait nobody.nosuchgroup internal", "group", "unknown group"},
    {"echo stream tcp nowait root: internal", "group", "empty group name"},
    {"echo stream tcp nowait 12345 internal", "group", "has no passwd entry"},
    {"echo stream tcp nowait root/ internal", "login-class", "empty login class"},
    // server-program
    {"ftp stream tcp nowait root internal", "server-program", "no internal stream service \"ftp\""},
    {"tcpmux/echo stream tcp nowait root internal", "server-program", "no internal"},
    {"7007 stream tcp nowait root internal nosuch", "server-program", "no internal"},
    {"7007 stream tcp nowait root internal auth-ish", "server-program", "no internal"},
    {"7007 dgram udp wait root internal auth", "server-program", "no internal"},
    {"/run/echo stream unix nowait root internal", "server-program", "no internal"},
    {"echo stream tcp nowait root bin/cat cat", "server-program", "not an absolute path"},
    {"echo stream tcp nowait root \"\" cat", "server-program", "not an absolute path"},
    {"echo stream tcp nowait root /nonexistent/prog prog", "server-program",
     "\"/nonexistent/prog\" is not an executable file", true},
    {"echo stream tcp nowait root /etc/passwd passwd", "server-program", "not an executable file",
     true},
    {"echo stream tcp nowait root /usr/bin usr", "server-program", "not an executable file", true},
    {"echo stream tcp nowait root /x 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21",
     "server-program-arguments", "more than 20 arguments"},
    {"echo stream tcp nowait root /bin/sh sh -c \"echo", "entry", "unterminated quote"},
    // tcpmux
    {"tcpmux/ stream tcp nowait root /x x", "service", "tcpmux entry without a name"},
    {"tcpmux/+ stream tcp nowait root /x x", "service", "tcpmux entry without a name"},
    {"tcpmux/foo dgram udp wait root /x x", "protocol", "tcpmux services need stream tcp"},
    {"127.0.0.1:tcpmux/foo stream tcp nowait root /x x", "address",
     "tcpmux services have no socket"},
    // addresses
    {":echo stream tcp nowait root internal", "address", "empty address"},
    {"[127.0.0.1]:echo stream tcp nowait root internal", "address", "cannot resolve \"127.0.0.1\""},
    {"[]:echo stream tcp nowait root internal", "address", "cannot resolve"},
    {"127.0.0.1,,::1:echo stream tcp nowait root internal", "address", "cannot resolve \"\""},
    {"::1:echo stream tcp4 nowait root internal", "address", "tcp4 cannot bind \"::1\""},
    {"127.0.0.1:echo stream tcp6 nowait root internal", "address",
     "tcp6 cannot bind \"127.0.0.1\""},
    {"127.0.0.1:echo stream tcp46 nowait root internal", "address", "wrong address family"},
    {"127.0.0.1:echo dgram udp6 wait root internal", "address", "wrong address family"},
    // unix sockets
    {"run/foo stream unix nowait root /x x", "service", "needs an absolute path"},
    {":nosuchuser:root:0600:/run/x stream unix nowait root /x x", "service",
     "unknown socket owner"},
    {":root:nosuchgroup:0600:/run/x stream unix nowait root /x x", "service",
     "unknown socket group"},
    {":root:root:0999:/run/x stream unix nowait root /x x", "service", "bad socket mode \"0999\""},
    {":root:root:17777:/run/x stream unix nowait root /x x", "service", "bad socket mode"},
    {":root:root::/run/x stream unix nowait root /x x", "service", "bad socket mode"},
    {":root:root:0600 stream unix nowait root /x x", "service", "expected :user:group:mode:/path"},
    {":root:root:0600:run/x stream unix nowait root /x x", "service", "needs an absolute path"},
};

void PrintTo(const Bad& b, std::ostream* os) { *os << b.text; }

class BadEntry : public testing::TestWithParam<Bad> {};

TEST_P(BadEntry, IsReportedAndSkipped) {
  const Bad& b = GetParam();
  std::string text = b.text;
  ParseOptions opts;
  opts.resolve_hosts = false;
  if (b.dash_a_v4_only) opts.bind4 = in_addr{htonl(INADDR_LOOPBACK)};
  // A good entry after the bad one is still served.
  text += "\ndaytime stream tcp nowait root internal\n";
  Config c = Parse(text, b.check_programs, opts);
  ASSERT_EQ(c.errors.size(), 1u) << b.text;
  const ConfigError& e = c.errors[0];
  EXPECT_EQ(e.file, "test.conf");
  EXPECT_EQ(e.line, 1);
  EXPECT_EQ(e.field, b.field) << e.ToString();
  EXPECT_NE(e.message.find(b.message), std::string::npos) << e.ToString();
  ASSERT_EQ(c.services.size(), 1u);
  EXPECT_EQ(c.services[0].name, "daytime");
  EXPECT_EQ(c.services[0].line, 2);
}

INSTANTIATE_TEST_SUITE_P(Config, BadEntry, testing::ValuesIn(kBad));

TEST(Config, NulByteIsAnError) {
  Config c = Parse(std::string_view("echo stream tcp nowait ro\0ot internal\n", 38));
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_EQ(c.errors[0].ToString(), "test.conf:1: entry: NUL byte");
  EXPECT_TRUE(c.services.empty());
}

TEST(Config, UnixPathTooLong) {
  Config c = Parse("/" + std::string(107, 'a') + " stream unix nowait root /x x\n/" +
                   std::string(106, 'a') + " stream unix nowait root /x x\n");
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_EQ(c.errors[0].field, "service");
  EXPECT_NE(c.errors[0].message.find("path too long"), std::string::npos);
  ASSERT_EQ(c.services.size(), 1u);
  EXPECT_EQ(c.services[0].addrlen, offsetof(sockaddr_un, sun_path) + 108);
}

// ---------------------------------------------------------------------------
// Lines: comments, continuation, host lines, several sockets per entry.

TEST(Config, CommentsAndBlankLines) {
  Config c = Parse(
      "# comment\n"
      "#:INTERNAL: Internal services\n"
      "#<off># talk\tdgram\tudp\twait\tnobody.tty\t/usr/sbin/in.talkd\tin.talkd\n"
      "\n"
      "   \t \n"
      "  # an indented comment\n"
      "echo stream tcp nowait root internal\n");
  EXPECT_TRUE(c.errors.empty());
  ASSERT_EQ(c.services.size(), 1u);
  EXPECT_EQ(c.services[0].line, 7);
}

TEST(Config, ContinuationLines) {
  Config c = Parse(
      "# first\n"
      "git stream tcp nowait nobody /usr/bin/git git daemon\n"
      "\t--inetd\n"
      "  # a comment inside the entry\n"
      "   --export-all /srv/git\n"
      "echo stream tcp\n"
      "\tnowait root\n"
      "\tinternal\n");
  for (const ConfigError& e : c.errors) ADD_FAILURE() << e.ToString();
  ASSERT_EQ(c.services.size(), 2u);
  EXPECT_EQ(c.services[0].line, 2);
  EXPECT_EQ(c.services[0].argv, (Args{"git", "daemon", "--inetd", "--export-all", "/srv/git"}));
  EXPECT_EQ(c.services[1].line, 6);
  EXPECT_TRUE(c.services[1].internal);
}

TEST(Config, EmptyLineOrCommentEndsAnEntry) {
  Config c = Parse(
      "echo stream tcp nowait root\n"  // 1: missing server-program
      "\n"
      "\tinternal\n"                      // 3: an entry of its own
      "daytime stream tcp nowait root\n"  // 4
      "#\n"
      " internal\n");  // 6
  ASSERT_EQ(c.errors.size(), 4u);
  EXPECT_EQ(c.errors[0].line, 1);
  EXPECT_EQ(c.errors[0].field, "server-program");
  EXPECT_EQ(c.errors[1].line, 3);
  EXPECT_EQ(c.errors[1].field, "socket-type");
  EXPECT_EQ(c.errors[2].line, 4);
  EXPECT_EQ(c.errors[3].line, 6);
  EXPECT_TRUE(c.services.empty());
}

TEST(Config, ErrorNamesTheFirstLineOfAContinuedEntry) {
  Config c = Parse("\n\nfoo stream\n  tcp nowait\n  root /x x\n");
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_EQ(c.errors[0].line, 3);
  EXPECT_EQ(c.errors[0].field, "service");
}

TEST(Config, HostLinesSetTheDefaultAddress) {
  Config c = Parse(
      "127.0.0.1:\n"
      "daytime stream tcp nowait root internal\n"
      "time dgram udp wait root internal\n"
      "[::1]:echo stream tcp6 nowait root internal\n"  // an explicit address wins
      "/run/x stream unix nowait root /x x\n"          // unix and tcpmux have no address
      "tcpmux/foo stream tcp nowait root /x x\n"
      "*:\n"
      "discard stream tcp nowait root internal\n"
      "[::1]:\n"
      "chargen stream tcp nowait root internal\n");
  for (const ConfigError& e : c.errors) ADD_FAILURE() << e.ToString();
  ASSERT_EQ(c.services.size(), 7u);
  EXPECT_EQ(AddrString(c.services[0]), "127.0.0.1:13");
  EXPECT_EQ(AddrString(c.services[1]), "127.0.0.1:37");
  EXPECT_EQ(AddrString(c.services[2]), "[::1]:7");
  EXPECT_EQ(AddrString(c.services[3]), "/run/x");
  EXPECT_EQ(c.services[4].addrlen, 0u);
  EXPECT_EQ(AddrString(c.services[5]), "0.0.0.0:9");
  EXPECT_EQ(AddrString(c.services[6]), "[::1]:19");
  EXPECT_TRUE(c.services[6].v6only);
}

TEST(Config, BadDefaultHostFailsEveryEntryAfterIt) {
  ParseOptions opts;
  opts.resolve_hosts = false;
  Config c = Parse(
      "no.such.host:\necho stream tcp nowait root internal\ntime stream tcp nowait root internal\n",
      false, opts);
  EXPECT_TRUE(c.services.empty());  // never the wildcard instead
  ASSERT_EQ(c.errors.size(), 2u);
  EXPECT_EQ(c.errors[0].field, "address");
  EXPECT_EQ(c.errors[1].line, 3);
}

TEST(Config, HostListBindsEach) {
  Config c = Parse("127.0.0.1,::1,*:chargen stream tcp nowait root internal\n");
  for (const ConfigError& e : c.errors) ADD_FAILURE() << e.ToString();
  ASSERT_EQ(c.services.size(), 3u);
  EXPECT_EQ(AddrString(c.services[0]), "127.0.0.1:19");
  EXPECT_EQ(c.services[0].family, AF_INET);
  EXPECT_EQ(AddrString(c.services[1]), "[::1]:19");
  EXPECT_EQ(c.services[1].family, AF_INET6);
  EXPECT_TRUE(c.services[1].v6only);
  EXPECT_EQ(AddrString(c.services[2]), "0.0.0.0:19");
  for (const ServiceConfig& s : c.services) {
    EXPECT_EQ(s.line, 1);
    EXPECT_EQ(s.name, "chargen");
    EXPECT_EQ(ServiceLabel(s), "chargen/tcp");
  }
}

TEST(Config, HostNamesAreResolved) {
  Config c = Parse("localhost:echo stream tcp nowait root internal\n");
  for (const ConfigError& e : c.errors) ADD_FAILURE() << e.ToString();
  bool found = false;
  for (const ServiceConfig& s : c.services) found |= AddrString(s) == "127.0.0.1:7";
  EXPECT_TRUE(found);
  ParseOptions no_dns;
  no_dns.resolve_hosts = false;
  c = Parse("localhost:echo stream tcp nowait root internal\n", false, no_dns);
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_EQ(c.errors[0].field, "address");
}

// ---------------------------------------------------------------------------
// -a: the default addresses.

TEST(Config, BindAddressesFromDashA) {
  ParseOptions opts;
  opts.bind4 = in_addr{htonl(INADDR_LOOPBACK)};
  opts.bind6 = in6addr_loopback;
  Config c = Parse(
      "echo stream tcp nowait root internal\n"
      "echo stream tcp6 nowait root internal\n"
      "echo dgram udp46 wait root internal\n"
      "*:daytime stream tcp nowait root internal\n"
      "0.0.0.0:time stream tcp nowait root internal\n",  // an explicit address ignores -a
      false, opts);
  for (const ConfigError& e : c.errors) ADD_FAILURE() << e.ToString();
  ASSERT_EQ(c.services.size(), 5u);
  EXPECT_EQ(AddrString(c.services[0]), "127.0.0.1:7");
  EXPECT_EQ(AddrString(c.services[1]), "[::1]:7");
  EXPECT_EQ(AddrString(c.services[2]), "[::1]:7");
  EXPECT_FALSE(c.services[2].v6only);
  EXPECT_EQ(AddrString(c.services[3]), "127.0.0.1:13");
  EXPECT_EQ(AddrString(c.services[4]), "0.0.0.0:37");
}

TEST(Config, DashAWithOneFamilyServesOnlyThatFamily) {
  ParseOptions opts;
  opts.bind4 = in_addr{htonl(INADDR_LOOPBACK)};
  Config c = Parse(
      "echo stream tcp nowait root internal\n"
      "echo stream tcp6 nowait root internal\n"  // no IPv6 address: error
      "echo dgram udp46 wait root internal\n",   // falls back to IPv4 (FreeBSD)
      false, opts);
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_EQ(c.errors[0].line, 2);
  EXPECT_EQ(c.errors[0].field, "protocol");
  ASSERT_EQ(c.services.size(), 2u);
  EXPECT_EQ(AddrString(c.services[1]), "127.0.0.1:7");
  EXPECT_EQ(c.services[1].family, AF_INET);

  ParseOptions only6;
  only6.bind6 = in6addr_loopback;
  c = Parse("echo stream tcp nowait root internal\necho stream tcp46 nowait root internal\n", false,
            only6);
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_NE(c.errors[0].message.find("-a gave no IPv4"), std::string::npos);
  ASSERT_EQ(c.services.size(), 1u);
  EXPECT_EQ(AddrString(c.services[0]), "[::1]:7");
}

TEST(Config, ResolveBindAddress) {
  ParseOptions opts;
  ASSERT_TRUE(ResolveBindAddress("127.0.0.1", opts));
  ASSERT_TRUE(opts.bind4);
  EXPECT_EQ(opts.bind4->s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_FALSE(opts.bind6);
  ASSERT_TRUE(ResolveBindAddress("::1", opts));  // a second -a replaces the first
  EXPECT_FALSE(opts.bind4);
  ASSERT_TRUE(opts.bind6);
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&*opts.bind6));
  ASSERT_TRUE(ResolveBindAddress("localhost", opts));
  ASSERT_TRUE(opts.bind4);
  EXPECT_EQ(opts.bind4->s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_FALSE(ResolveBindAddress("", opts));
}

// ---------------------------------------------------------------------------
// Duplicates, SameSocket, labels, error text.

TEST(Config, DuplicateIsAnErrorOnTheLaterLine) {
  Config c = Parse(
      "echo stream tcp nowait root internal\n"
      "echo stream tcp6 nowait root internal\n"           // another family: fine
      "echo dgram udp wait root internal\n"               // another protocol: fine
      "7 stream tcp nowait root /bin/cat cat\n"           // same socket as line 1
      "127.0.0.1:echo stream tcp nowait root internal\n"  // another address: fine
      "tcpmux/foo stream tcp nowait root /x x\n"
      "tcpmux/FOO stream tcp6 nowait root /y y\n"  // tcpmux names ignore case
      "/run/s stream unix nowait root /x x\n"
      ":daemon:daemon:0600:/run/s stream unix nowait root /x x\n"
      "127.0.0.1,::1:echo stream tcp nowait root internal\n");  // half of it clashes: all skipped
  ASSERT_EQ(c.errors.size(), 4u);
  EXPECT_EQ(c.errors[0].ToString(), "test.conf:4: service: same socket as the entry at line 1");
  EXPECT_EQ(c.errors[1].ToString(), "test.conf:7: service: same socket as the entry at line 6");
  EXPECT_EQ(c.errors[2].ToString(), "test.conf:9: service: same socket as the entry at line 8");
  EXPECT_EQ(c.errors[3].ToString(), "test.conf:10: service: same socket as the entry at line 5");
  EXPECT_EQ(c.services.size(), 6u);
}

TEST(Config, SameSocket) {
  auto one = [](const std::string& line) {
    Config c = Parse(line);
    EXPECT_EQ(c.services.size(), 1u) << line;
    return c.services.empty() ? ServiceConfig{} : c.services[0];
  };
  const ServiceConfig echo = one("echo stream tcp nowait root internal");
  EXPECT_TRUE(SameSocket(echo, echo));
  // A different service on the same socket keeps the socket on reload.
  EXPECT_TRUE(SameSocket(echo, one("echo stream tcp nowait/5 nobody /bin/cat cat")));
  EXPECT_FALSE(SameSocket(echo, one("discard stream tcp nowait root internal")));
  EXPECT_FALSE(SameSocket(echo, one("echo dgram udp wait root internal")));
  EXPECT_FALSE(SameSocket(echo, one("echo stream tcp6 nowait root internal")));
  EXPECT_FALSE(SameSocket(echo, one("127.0.0.1:echo stream tcp nowait root internal")));
  EXPECT_FALSE(SameSocket(one("[::]:echo stream tcp6 nowait root internal"),
                          one("echo stream tcp46 nowait root internal")));  // v6only differs
  const ServiceConfig mux = one("tcpmux/foo stream tcp nowait root /x x");
  EXPECT_FALSE(SameSocket(mux, mux));  // no socket at all
  const ServiceConfig un = one("/run/s stream unix nowait root /x x");
  EXPECT_TRUE(SameSocket(un, one("/run/s stream unix nowait root /y y")));
  EXPECT_FALSE(SameSocket(un, one(":root:root:0666:/run/s stream unix nowait root /x x")));
  EXPECT_FALSE(SameSocket(un, one("/run/t stream unix nowait root /x x")));
}

TEST(Config, ErrorToString) {
  ConfigError e{"/etc/inetd.conf", 12, "user", "unknown user \"qmaild\""};
  EXPECT_EQ(e.ToString(), "/etc/inetd.conf:12: user: unknown user \"qmaild\"");
}

TEST(Config, LongFieldsAreCutInMessages) {
  Config c = Parse(std::string(100000, 'x') + " stream tcp nowait root internal\n");
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_LT(c.errors[0].message.size(), 200u);
}

// ---------------------------------------------------------------------------
// LoadConfig.

class LoadConfigTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/config_test.XXXXXX";
    ASSERT_EQ(close(mkstemp(tmpl)), 0);
    path_ = tmpl;
  }
  void TearDown() override { unlink(path_.c_str()); }
  void Write(const std::string& text) { std::ofstream(path_, std::ios::binary) << text; }
  std::string path_;
};

TEST_F(LoadConfigTest, ReadsAndParses) {
  Write("echo stream tcp nowait root internal\nbogus\n");
  ParseOptions opts;
  std::optional<Config> c = LoadConfig(path_, opts);
  ASSERT_TRUE(c);
  ASSERT_EQ(c->services.size(), 1u);
  EXPECT_EQ(c->services[0].file, path_);
  ASSERT_EQ(c->errors.size(), 1u);
  EXPECT_EQ(c->errors[0].ToString(),
            path_ + ":2: socket-type: missing (an entry has at least six fields)");
}

TEST_F(LoadConfigTest, MissingFile) {
  EXPECT_FALSE(LoadConfig(path_ + ".missing", ParseOptions{}));
}

TEST_F(LoadConfigTest, RefusesHugeFiles) {
  Write(std::string(4 << 20, '#'));  // 4 MiB exactly: fine
  EXPECT_TRUE(LoadConfig(path_, ParseOptions{}));
  Write(std::string((4 << 20) + 1, '#'));
  EXPECT_FALSE(LoadConfig(path_, ParseOptions{}));
}

TEST_F(LoadConfigTest, Directory) { EXPECT_FALSE(LoadConfig("/tmp", ParseOptions{})); }

// ---------------------------------------------------------------------------
// Never crashes on garbage (the fuzzer goes further).

TEST(Config, Garbage) {
  std::mt19937 rng(1);
  const std::string alphabet = "ab:/.,[]*#\"' \t\n\r\0019echostreamtcpudp6nowait/root internal";
  ParseOptions opts;
  opts.check_programs = false;
  opts.resolve_hosts = false;
  for (int i = 0; i < 2000; ++i) {
    std::string text;
    for (int n = static_cast<int>(rng() % 200); n > 0; --n)
      text += alphabet[rng() % alphabet.size()];
    Config c = ParseConfig(text, "g", opts);
    for (const ConfigError& e : c.errors) EXPECT_FALSE(e.ToString().empty());
  }
  Config c = ParseConfig(std::string(1 << 20, 'a'), "g", opts);
  EXPECT_EQ(c.errors.size(), 1u);
  c = ParseConfig(std::string(1 << 16, '\n'), "g", opts);
  EXPECT_TRUE(c.errors.empty());
  c = ParseConfig(std::string(1 << 16, '\0'), "g", opts);
  EXPECT_EQ(c.errors.size(), 1u);
}

// ---------------------------------------------------------------------------
// The real files in tests/unit/corpus/ (see its README.md).

TEST(Corpus, FreeBsdDefaultIsAllComments) {
  Config c = LoadConfig(Corpus("freebsd-default.inetd.conf"), ParseOptions{}).value();
  EXPECT_TRUE(c.services.empty());
  EXPECT_TRUE(c.errors.empty());
}

TEST(Corpus, DebianDefaultIsAllComments) {
  Config c = LoadConfig(Corpus("debian-default.inetd.conf"), ParseOptions{}).value();
  EXPECT_TRUE(c.services.empty());
  EXPECT_TRUE(c.errors.empty());
}

// The expected error field per line of freebsd-all-enabled.inetd.conf when
// programs are not checked. Entries that need what this machine may lack
// (users, /etc/services names) are computed.
std::map<int, std::string> FreeBsdExpected(const std::string& t) {
  std::map<int, std::string> want;
  want[LineOf(t, "comsat")] = "user";  // tty:tty, no user tty on Linux
  want[LineOf(t, "ntalk")] = "user";
  want[LineOf(t, "cvspserver", 2)] = "service";  // same socket as the first
  for (const char* rpc : {"rstatd", "rusersd", "walld", "pcnfsd", "sprayd"})
    want[LineOf(t, rpc)] = "protocol";
  want[LineOf(t, "rquotad", 1)] = "protocol";
  want[LineOf(t, "rquotad", 2)] = "protocol";
  if (!ServiceExists("imap4", "tcp")) want[LineOf(t, "imap4")] = "service";
  if (!UserExists("news")) want[LineOf(t, "nntp")] = "user";
  want[LineOf(t, "auth", 3)] = "service";  // the second tcp auth, and so on
  want[LineOf(t, "auth", 4)] = "service";
  want[LineOf(t, "auth", 5)] = "service";
  if (!UserExists("qmaild")) want[LineOf(t, "smtp")] = "user";
  if (!ServiceExists("swat", "tcp")) want[LineOf(t, "swat")] = "service";
  if (!ServiceExists("prom-sysctl", "tcp")) want[LineOf(t, "prom-sysctl")] = "service";
  if (!ServiceExists("prom-ctl", "tcp")) want[LineOf(t, "prom-ctl")] = "service";
  return want;
}

TEST(Corpus, FreeBsdAllEnabled) {
  const std::string path = Corpus("freebsd-all-enabled.inetd.conf");
  const std::string text = ReadFile(path);
  ParseOptions opts;
  opts.check_programs = false;
  Config c = LoadConfig(path, opts).value();
  const std::map<int, std::string> want = FreeBsdExpected(text);
  EXPECT_EQ(ErrorsByLine(c), want);
  for (const ConfigError& e : c.errors) {
    EXPECT_EQ(e.file, path);
    if (e.field == "protocol") {
      EXPECT_EQ(e.message, "RPC services are not supported");
    }
  }
  // Every other entry is served, one socket each.
  std::set<int> served;
  for (const ServiceConfig& s : c.services) EXPECT_TRUE(served.insert(s.line).second) << s.line;
  int entries = 0;
  std::istringstream in(text);
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (line.empty() || line[0] == '#') continue;
    ++entries;
    EXPECT_NE(served.count(no) + want.count(no), 0u)
        << "line " << no << " neither served nor an error";
  }
  EXPECT_EQ(served.size() + want.size(), static_cast<size_t>(entries));

  // Spot checks of the forms the README names.
  auto at = [&](int line) -> const ServiceConfig& {
    for (const ServiceConfig& s : c.services)
      if (s.line == line) return s;
    ADD_FAILURE() << "nothing served from line " << line;
    return c.services.front();
  };
  const ServiceConfig& ssh = at(LineOf(text, "ssh", 2));
  EXPECT_EQ(ssh.proto, "tcp6");
  EXPECT_TRUE(ssh.v6only);
  EXPECT_EQ(ssh.argv, (Args{"sshd", "-i", "-6"}));
  const ServiceConfig& finger = at(LineOf(text, "finger"));
  EXPECT_EQ(finger.max_child, 3);
  EXPECT_EQ(finger.per_ip_rate, 10);
  EXPECT_EQ(finger.user, "nobody");
  const ServiceConfig& time_udp = at(LineOf(text, "time\t dgram\tudp\t"));
  EXPECT_EQ(time_udp.builtin, "time");
  EXPECT_EQ(time_udp.type, SockType::kDgram);
  const ServiceConfig& nbns = at(LineOf(text, "netbios-ns"));
  EXPECT_EQ(nbns.user, "root");
  EXPECT_EQ(nbns.max_child, 1);
  EXPECT_EQ(nbns.argv, Args{"nmbd"});
  if (ServiceExists("swat", "tcp")) {
    EXPECT_EQ(at(LineOf(text, "swat")).max_child, 400);
  }
}

TEST(Corpus, FreeBsdAllEnabledWithProgramChecks) {
  const std::string path = Corpus("freebsd-all-enabled.inetd.conf");
  const std::string text = ReadFile(path);
  Config unchecked = LoadConfig(path, Unchecked()).value();
  Config c = LoadConfig(path, ParseOptions{}).value();
  // Each external entry served without checks now names its missing program;
  // the duplicates of entries whose program is missing do too.
  std::map<int, std::string> want = FreeBsdExpected(text);
  for (const ServiceConfig& s : unchecked.services)
    if (!s.internal && !Executable(s.program)) want[s.line] = "server-program";
  for (int line : {LineOf(text, "cvspserver", 2), LineOf(text, "auth", 5)})
    want[line] = "server-program";
  EXPECT_EQ(ErrorsByLine(c), want);
  for (const ConfigError& e : c.errors)
    if (e.field == "server-program") {
      EXPECT_NE(e.message.find("is not an executable file"), std::string::npos);
    }
  for (const ServiceConfig& s : c.services)
    EXPECT_TRUE(s.internal || Executable(s.program)) << s.line;
}

TEST(Corpus, DebianUpdateInetd) {
  const std::string path = Corpus("debian-update-inetd.inetd.conf");
  const std::string text = ReadFile(path);
  Config c = LoadConfig(path, Unchecked()).value();
  std::map<int, std::string> want = {
      {LineOf(text, "ident"), "user"},  // no identd user
      {LineOf(text, "swat"), "wait"},   // nowait.400
  };
  EXPECT_EQ(ErrorsByLine(c), want);
  for (const ConfigError& e : c.errors)
    if (e.field == "wait") {
      EXPECT_EQ(
          e.ToString(),
          path + ":" + std::to_string(LineOf(text, "swat")) +
              ": wait: OpenBSD's \"nowait.400\" (a per-minute start rate for this service) is "
              "not supported: write \"nowait\" and set the rate with -R");
    }
  ASSERT_EQ(c.services.size(), 4u);
  const ServiceConfig& finger = c.services[0];
  EXPECT_EQ(finger.name, "finger");
  EXPECT_EQ(finger.program, "/usr/sbin/tcpd");  // tcpd runs the real daemon, named as argv[0]
  EXPECT_EQ(finger.argv, Args{"/usr/sbin/in.fingerd"});
  const ServiceConfig& tftp = c.services[1];
  EXPECT_EQ(tftp.proto, "udp4");
  EXPECT_EQ(tftp.family, AF_INET);
  EXPECT_TRUE(tftp.wait);
  EXPECT_EQ(tftp.max_child, 1);
  EXPECT_EQ(tftp.argv, (Args{"/usr/sbin/in.tftpd", "-s", "/srv/tftp"}));
  EXPECT_EQ(c.services[2].argv,
            (Args{"git", "daemon", "--inetd", "--export-all", "--base-path=/srv/git", "/srv/git"}));
  EXPECT_EQ(c.services[3].argv, (Args{"rsyncd", "--daemon"}));

  // With program checks the missing ones (tcpd here) are named; the rest is unchanged.
  for (const ServiceConfig& s : c.services)
    if (!Executable(s.program)) want[s.line] = "server-program";
  EXPECT_EQ(ErrorsByLine(LoadConfig(path, ParseOptions{}).value()), want);
}

TEST(Corpus, OpenBsdHostPrefix) {
  Config c = LoadConfig(Corpus("openbsd-host-prefix.inetd.conf"), ParseOptions{}).value();
  for (const ConfigError& e : c.errors) ADD_FAILURE() << e.ToString();
  std::vector<std::string> got;
  for (const ServiceConfig& s : c.services)
    got.push_back(ServiceLabel(s) + " " + AddrString(s) + (s.v6only ? " v6only" : ""));
  EXPECT_EQ(got, (std::vector<std::string>{
                     "echo/tcp 127.0.0.1:7",
                     "echo/tcp6 [::1]:7 v6only",
                     "daytime/tcp 127.0.0.1:13",
                     "time/udp 127.0.0.1:37",
                     "discard/tcp 0.0.0.0:9",
                     "chargen/tcp 127.0.0.1:19",
                     "chargen/tcp [::1]:19 v6only",
                 }));
}

}  // namespace
}  // namespace inetd::priv
