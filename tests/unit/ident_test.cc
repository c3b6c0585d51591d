// The auth (RFC 1413) built-in: framing, query parser, FreeBSD's options and
// the reply bytes as tables; then the real thing as root: sock_diag names the
// owner of a loopback connection opened by uid 65534 in a child process, a
// whole exchange runs through the auth connection over loopback TCP, bad
// input is closed with a log line, and the exchange works under the
// listener's seccomp filter. Without root those cases are skipped.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "listener/builtin.h"
#include "listener/builtin_impl.h"
#include "listener/ident.h"
#include "listener/policy.h"
#include "listener/sock_diag.h"
#include "proto/inetd.pb.h"
#include "proto/log.h"

namespace inetd::listener {
namespace {

using ident::Owner;
using ident::OwnerStatus;
using ident::Scan;

constexpr uint32_t kNobody = 65534;

// --- framing ---------------------------------------------------------------

struct ScanCase {
  std::string in;
  Scan scan;
  size_t line_len;
};

TEST(IdentScan, Table) {
  const ScanCase cases[] = {
      {"", Scan::kNeedMore, 0},
      {"6193, 23", Scan::kNeedMore, 0},
      {"6193, 23\r", Scan::kNeedMore, 0},
      {"6193, 23\r\n", Scan::kLine, 8},
      {"6193, 23\n", Scan::kLine, 8},  // a bare LF is taken too
      {"\r\n", Scan::kLine, 0},
      {"\n", Scan::kLine, 0},
      {"1,2\r\n3,4\r\n", Scan::kLine, 3},
      {"1,2\r\r\n", Scan::kLine, 4},  // one CR is the line end's, the other is the line's
      {std::string("1\0,2\r\n", 6), Scan::kNul, 0},
      {std::string("\0", 1), Scan::kNul, 0},
      {std::string("1,2\n\0", 5), Scan::kLine, 3},  // after the line: not looked at
      {std::string(999, 'x'), Scan::kNeedMore, 0},
      {std::string(999, 'x') + "\n", Scan::kLine, 999},
      {std::string(998, 'x') + "\r\n", Scan::kLine, 998},
      {std::string(1000, 'x'), Scan::kOverlong, 0},
      {std::string(1000, 'x') + "\n", Scan::kOverlong, 0},
      {std::string(5000, ' '), Scan::kOverlong, 0},
  };
  for (const ScanCase& c : cases) {
    const ident::ScanResult r = ident::ScanLine(c.in);
    EXPECT_EQ(r.scan, c.scan) << c.in.substr(0, 20);
    if (c.scan == Scan::kLine) {
      EXPECT_EQ(r.line_len, c.line_len) << c.in.substr(0, 20);
    }
  }
}

// --- query -----------------------------------------------------------------

struct RequestCase {
  std::string line;
  bool valid;
  uint32_t server, client;  // echoed in the reply
};

TEST(IdentRequest, Table) {
  const RequestCase cases[] = {
      // RFC 1413's own examples and FreeBSD's spacing
      {"6191, 23", true, 6191, 23},
      {"6193 , 23", true, 6193, 23},
      {"6193,23", true, 6193, 23},
      {"  6193\t ,\t 23  ", true, 6193, 23},
      {"1,65535", true, 1, 65535},
      {"65535 , 1", true, 65535, 1},
      {"00080 , 00023", true, 80, 23},
      // well-formed, out of range: INVALID-PORT naming the pair
      {"0 , 23", false, 0, 23},
      {"6193 , 0", false, 6193, 0},
      {"65536 , 23", false, 65536, 23},
      {"23 , 99999", false, 23, 99999},
      // not two port numbers: INVALID-PORT for 0 , 0
      {"100000 , 1", false, 0, 0},
      {"1 , 000001", false, 0, 0},
      {"-1 , 23", false, 0, 0},
      {"+1 , 23", false, 0, 0},
      {"1.5 , 23", false, 0, 0},
      {"0x10 , 23", false, 0, 0},
      {"6 193 , 23", false, 0, 0},
      {"6193 23", false, 0, 0},
      {"6193 ; 23", false, 0, 0},
      {"6193 , 23 , 5", false, 0, 0},
      {"6193 , 23x", false, 0, 0},
      {"6193 , 23\r", false, 0, 0},
      {"6193 ,", false, 0, 0},
      {", 23", false, 0, 0},
      {",", false, 0, 0},
      {"", false, 0, 0},
      {"   ", false, 0, 0},
      {"GET / HTTP/1.0", false, 0, 0},
      {std::string("1\xff , 2"), false, 0, 0},
  };
  for (const RequestCase& c : cases) {
    const ident::Request r = ident::ParseRequest(c.line);
    EXPECT_EQ(r.valid, c.valid) << '"' << c.line << '"';
    EXPECT_EQ(r.server_port, c.server) << '"' << c.line << '"';
    EXPECT_EQ(r.client_port, c.client) << '"' << c.line << '"';
  }
}

// --- options ---------------------------------------------------------------

ident::ParsedOptions Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "auth");
  return ident::ParseOptions(args);
}

TEST(IdentOptions, DefaultsAreFreeBSDs) {
  const ident::ParsedOptions p = Parse({});
  EXPECT_FALSE(p.options.real);
  EXPECT_FALSE(p.options.numeric);
  EXPECT_FALSE(p.options.random);
  EXPECT_FALSE(p.options.hidden);
  EXPECT_EQ(p.options.fallback, "");
  EXPECT_EQ(p.options.os, "");
  EXPECT_EQ(p.options.timeout_ms, 10'000);
  EXPECT_TRUE(p.notes.empty());
  // argv[0] is the service's name, never an option
  EXPECT_FALSE(ident::ParseOptions(std::vector<std::string>{"-r"}).options.real);
  EXPECT_FALSE(ident::ParseOptions(std::vector<std::string>{}).options.real);
}

TEST(IdentOptions, FlagsValuesAndClusters) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-r", "-i", "-g", "-d", "guest", "-o", "OTHER", "-t", "5"},
           {"-rig", "-dguest", "-oOTHER", "-t5"},
           {"-rigdguest", "-o", "OTHER", "-t", "5"},
       }) {
    const ident::ParsedOptions p = Parse(args);
    EXPECT_TRUE(p.options.real);
    EXPECT_TRUE(p.options.numeric);
    EXPECT_TRUE(p.options.random);
    EXPECT_EQ(p.options.fallback, "guest");
    EXPECT_EQ(p.options.os, "OTHER");
    EXPECT_EQ(p.options.timeout_ms, 5000);
    EXPECT_FALSE(p.options.hidden);
    EXPECT_TRUE(p.notes.empty()) << p.notes[0].text;
  }
  EXPECT_EQ(Parse({"-d", "a", "-d", "b"}).options.fallback, "b");  // the last one counts
}

TEST(IdentOptions, Timeout) {
  struct {
    const char* arg;
    int ms;
    bool noted;
  } cases[] = {
      {"10", 10'000, false},
      {"2.500000", 2500, false},
      {"1.5", 1001, false},  // sec.usec: 5 microseconds, not half a second
      {"0", 1, false},
      {"0.0", 1, false},
      {"3600", 3'600'000, false},
      {"3601", 10'000, true},
      {"1.1000000", 10'000, true},
      {"abc", 10'000, true},
      {"1.", 10'000, true},
      {".5", 10'000, true},
      {"-1", 10'000, true},
      {"", 10'000, true},
  };
  for (const auto& c : cases) {
    const ident::ParsedOptions p = Parse({"-t", c.arg});
    EXPECT_EQ(p.options.timeout_ms, c.ms) << c.arg;
    EXPECT_EQ(!p.notes.empty(), c.noted) << c.arg;
    EXPECT_FALSE(p.options.hidden) << c.arg;  // a bad timeout hides nothing
  }
}

TEST(IdentOptions, FilesOfUsersFailClosed) {
  for (const char* flag : {"-n", "-f", "-F"}) {
    const ident::ParsedOptions p = Parse({"-r", flag});
    EXPECT_TRUE(p.options.hidden) << flag;
    ASSERT_EQ(p.notes.size(), 1U) << flag;
    EXPECT_TRUE(p.notes[0].refused);
    EXPECT_NE(p.notes[0].text.find("cannot read"), std::string::npos) << p.notes[0].text;
    EXPECT_NE(p.notes[0].text.find("HIDDEN-USER"), std::string::npos) << p.notes[0].text;
    // Moot without -r (no real name is ever sent) or with -g (random names):
    // nothing to refuse.
    EXPECT_FALSE(Parse({flag}).options.hidden) << flag;
    EXPECT_TRUE(Parse({flag}).notes.empty()) << flag;
    EXPECT_FALSE(Parse({"-rg", flag}).options.hidden) << flag;
  }
  EXPECT_EQ(Parse({"-rnfF"}).notes.size(), 3U);
}

TEST(IdentOptions, BadArgumentsAreNoted) {
  struct {
    std::vector<std::string> args;
    bool hidden;
    const char* says;
  } cases[] = {
      {{"-x"}, true, "unknown option -x"},
      {{"-r", "-Z"}, true, "unknown option -Z"},
      {{"-d"}, true, "-d needs a value"},
      {{"-r", "-o"}, true, "-o needs a value"},
      {{"-t"}, true, "-t needs a value"},
      {{"-d", "two words"}, false, "not a user name"},
      {{"-d", ""}, false, "not a user name"},
      {{"-d", std::string(513, 'a')}, false, "not a user name"},
      {{"-o", "a:b"}, false, "not a system name"},
      {{"-o", std::string(65, 'A')}, false, "not a system name"},
      {{"-r", "extra"}, false, "ignored, from \"extra\""},
      {{"--", "-r"}, false, "ignored, from \"-r\""},
      {{"-r", "-", "-i"}, false, "ignored, from \"-\""},
  };
  for (const auto& c : cases) {
    const ident::ParsedOptions p = Parse(c.args);
    EXPECT_EQ(p.options.hidden, c.hidden) << c.says;
    ASSERT_FALSE(p.notes.empty()) << c.says;
    EXPECT_NE(p.notes[0].text.find(c.says), std::string::npos) << p.notes[0].text;
    EXPECT_EQ(p.notes[0].refused, c.hidden) << c.says;
  }
  EXPECT_EQ(Parse({"-d", std::string(512, 'a')}).options.fallback.size(), 512U);
  EXPECT_FALSE(Parse({"--", "-r"}).options.real);
  EXPECT_FALSE(Parse({"-r", "-", "-i"}).options.numeric);  // options end at the operand
}

// --- replies ---------------------------------------------------------------

TEST(IdentReply, BytesAsFreeBSDSendsThem) {
  EXPECT_EQ(ident::ErrorReply(6193, 23, ident::ErrorType::kNoUser),
            "6193 , 23 : ERROR : NO-USER\r\n");
  EXPECT_EQ(ident::ErrorReply(0, 0, ident::ErrorType::kInvalidPort),
            "0 , 0 : ERROR : INVALID-PORT\r\n");
  EXPECT_EQ(ident::ErrorReply(1, 2, ident::ErrorType::kHiddenUser),
            "1 , 2 : ERROR : HIDDEN-USER\r\n");
  EXPECT_EQ(ident::ErrorReply(65535, 65535, ident::ErrorType::kUnknownError),
            "65535 , 65535 : ERROR : UNKNOWN-ERROR\r\n");
  EXPECT_EQ(ident::UseridReply(6193, 23, "UNIX", "stjohns"),
            "6193 , 23 : USERID : UNIX : stjohns\r\n");
}

struct AnswerCase {
  std::vector<std::string> args;
  std::string line;
  Owner owner;
  std::string name;  // the owner's name in the table ("" if none)
  std::string want;
};

TEST(IdentAnswer, PerOption) {
  const Owner found{OwnerStatus::kFound, 1000};
  const Owner none{OwnerStatus::kNoUser, 0};
  const Owner failed{OwnerStatus::kFailed, 0};
  const std::string q = "6193 , 23";
  const std::string u = "6193 , 23 : USERID : Linux : ";
  const std::string e = "6193 , 23 : ERROR : ";
  const AnswerCase cases[] = {
      // without -r: HIDDEN-USER, -d's name, or -g's
      {{}, q, found, "alice", e + "HIDDEN-USER\r\n"},
      {{"-d", "guest"}, q, none, "", u + "guest\r\n"},
      {{"-g"}, q, none, "", u + "r4nd0m00\r\n"},
      {{"-g", "-d", "guest"}, q, found, "alice", u + "r4nd0m00\r\n"},
      {{"-i"}, q, found, "alice", e + "HIDDEN-USER\r\n"},
      {{"-o", "FreeBSD", "-d", "guest"}, q, none, "", "6193 , 23 : USERID : FreeBSD : guest\r\n"},
      // -r: the owner
      {{"-r"}, q, found, "alice", u + "alice\r\n"},
      {{"-r"}, q, found, "", u + "1000\r\n"},  // no name known: the number
      {{"-r", "-i"}, q, found, "alice", u + "1000\r\n"},
      {{"-r", "-d", "guest"}, q, found, "", u + "guest\r\n"},
      {{"-r", "-i", "-d", "guest"}, q, found, "", u + "1000\r\n"},
      {{"-r", "-g"}, q, found, "alice", u + "r4nd0m00\r\n"},
      {{"-r", "-o", "OTHER"}, q, found, "alice", "6193 , 23 : USERID : OTHER : alice\r\n"},
      // -r: no such connection, or the lookup failed
      {{"-r"}, q, none, "", e + "NO-USER\r\n"},
      {{"-r", "-d", "guest"}, q, none, "", u + "guest\r\n"},
      {{"-r", "-g"}, q, none, "", e + "NO-USER\r\n"},
      {{"-r", "-g", "-d", "guest"}, q, none, "", u + "r4nd0m00\r\n"},
      {{"-r"}, q, failed, "", e + "UNKNOWN-ERROR\r\n"},
      {{"-r", "-d", "guest"}, q, failed, "", u + "guest\r\n"},
      // fail closed
      {{"-r", "-n"}, q, found, "alice", e + "HIDDEN-USER\r\n"},
      {{"-r", "-f", "-d", "guest"}, q, none, "", e + "HIDDEN-USER\r\n"},
      {{"-r", "-x"}, q, found, "alice", e + "HIDDEN-USER\r\n"},
      // bad queries, whatever the options
      {{"-r"}, "hello", found, "alice", "0 , 0 : ERROR : INVALID-PORT\r\n"},
      {{}, "hello", none, "", "0 , 0 : ERROR : INVALID-PORT\r\n"},
      {{"-r", "-n"}, "0 , 23", found, "alice", "0 , 23 : ERROR : INVALID-PORT\r\n"},
      {{"-d", "guest"}, "70000,1", none, "", "70000 , 1 : ERROR : INVALID-PORT\r\n"},
      {{"-r"}, "  80 ,\t443 ", found, "alice", "80 , 443 : USERID : Linux : alice\r\n"},
  };
  for (const AnswerCase& c : cases) {
    std::string label;
    for (const std::string& a : c.args) label += a + " ";
    label += "| " + c.line;
    const ident::ParsedOptions p = Parse(c.args);
    const ident::Request r = ident::ParseRequest(c.line);
    ident::Facts f;
    f.owner = c.owner;
    f.user_name = c.name;
    f.random_name = "r4nd0m00";
    f.system_os = "Linux";
    EXPECT_EQ(ident::Answer(p.options, r, f), c.want) << label;
    // A lookup is made exactly when its result can matter.
    EXPECT_EQ(ident::NeedsOwner(p.options, r), r.valid && p.options.real && !p.options.hidden)
        << label;
  }
}

TEST(IdentNames, RandomAndValid) {
  for (uint64_t bits : {0ULL, 1ULL, ~0ULL, 0x123456789abcdefULL}) {
    const std::string n = ident::RandomName(bits);
    EXPECT_EQ(n.size(), 8U);
    EXPECT_EQ(n.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz"), std::string::npos);
  }
  EXPECT_NE(ident::RandomName(1), ident::RandomName(2));
  EXPECT_TRUE(ident::ValidUserId("alice"));
  EXPECT_TRUE(ident::ValidUserId("first.last@x"));
  EXPECT_FALSE(ident::ValidUserId(""));
  EXPECT_FALSE(ident::ValidUserId("a b"));
  EXPECT_FALSE(ident::ValidUserId("a\r\nb"));
  EXPECT_FALSE(ident::ValidUserId(std::string("a\0b", 3)));
  EXPECT_FALSE(ident::ValidUserId("caf\xc3\xa9"));
  EXPECT_TRUE(ident::ValidOs("UNIX"));
  EXPECT_TRUE(ident::ValidOs("UNIX,US-ASCII"));
  EXPECT_FALSE(ident::ValidOs("UN:IX"));
  EXPECT_FALSE(ident::ValidOs("UN IX"));
}

// --- real connections (root) -------------------------------------------------

sockaddr_storage Addr(const char* ip, uint16_t port, socklen_t* len) {
  sockaddr_storage ss{};
  if (strchr(ip, ':') != nullptr) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    EXPECT_EQ(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1) << ip;
    *len = sizeof *sin6;
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    EXPECT_EQ(inet_pton(AF_INET, ip, &sin->sin_addr), 1) << ip;
    *len = sizeof *sin;
  }
  return ss;
}

uint16_t PortOf(const sockaddr_storage& ss) {
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(ss).sin_port
                                       : reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
}

sockaddr_storage Local(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len), 0);
  return ss;
}

sockaddr_storage Peer(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  EXPECT_EQ(getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len), 0);
  return ss;
}

// A listening socket on `ip`, port chosen by the kernel. "::" listens dual-stack.
UniqueFd Listen(const char* ip) {
  socklen_t len = 0;
  sockaddr_storage ss = Addr(ip, 0, &len);
  UniqueFd l(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (ss.ss_family == AF_INET6) {
    int off = 0;
    setsockopt(l.Get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  }
  EXPECT_EQ(bind(l.Get(), reinterpret_cast<sockaddr*>(&ss), len), 0) << ip;
  EXPECT_EQ(listen(l.Get(), 8), 0);
  return l;
}

bool HaveIpv6Loopback() {
  UniqueFd s(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  socklen_t len = 0;
  sockaddr_storage ss = Addr("::1", 0, &len);
  return s.Valid() && bind(s.Get(), reinterpret_cast<sockaddr*>(&ss), len) == 0;
}

// A TCP connection whose client end belongs to `uid`: a child process
// switches to it, connects to a socket listening on `listen_ip` (through
// `connect_ip`), and holds the connection until Close() or destruction.
class ForeignConnection {
 public:
  ForeignConnection(uid_t uid, const char* listen_ip, const char* connect_ip)
      : listener_(Listen(listen_ip)) {
    const uint16_t port = PortOf(Local(listener_.Get()));
    int ready[2], done[2];
    EXPECT_EQ(pipe2(ready, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(done, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      close(ready[0]);
      close(done[1]);
      if (setgid(uid) != 0 || setuid(uid) != 0) _exit(2);
      socklen_t len = 0;
      sockaddr_storage to = Addr(connect_ip, port, &len);
      int s = socket(to.ss_family, SOCK_STREAM, 0);
      if (connect(s, reinterpret_cast<sockaddr*>(&to), len) != 0) _exit(3);
      char c = 'r';
      if (write(ready[1], &c, 1) != 1) _exit(4);
      (void)!read(done[0], &c, 1);  // until the parent closes its end
      _exit(0);
    }
    close(ready[1]);
    close(done[0]);
    done_.Reset(done[1]);
    char c = 0;
    EXPECT_EQ(read(ready[0], &c, 1), 1) << "the child could not connect";
    close(ready[0]);
    server_end_.Reset(accept4(listener_.Get(), nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_TRUE(server_end_.Valid());
  }
  ~ForeignConnection() { Close(); }

  // The child's end and the end accepted here, as this host sees them.
  sockaddr_storage client() const { return Peer(server_end_.Get()); }
  sockaddr_storage server() const { return Local(server_end_.Get()); }
  const UniqueFd& listener() const { return listener_; }

  // The child closes first (its end goes to FIN_WAIT and TIME_WAIT), then
  // the end here once the FIN has come.
  void Close() {
    if (pid_ <= 0) return;
    done_.Reset();
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    char buf[64];
    while (read(server_end_.Get(), buf, sizeof buf) > 0) {
    }
    server_end_.Reset();
  }

 private:
  UniqueFd listener_;
  UniqueFd server_end_;
  UniqueFd done_;
  pid_t pid_ = -1;
};

class IdentRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to open a connection as another uid";
    Result<SockDiag> d = SockDiag::Open();
    ASSERT_TRUE(d.has_value()) << strerror(d.error().code);
    diag_ = std::move(*d);
  }
  SockDiag diag_;
};

TEST_F(IdentRoot, SockDiagNamesTheOwnerOfEachEnd) {
  ForeignConnection fc(kNobody, "127.0.0.1", "127.0.0.1");
  const Owner theirs = diag_.TcpOwner(fc.client(), fc.server());
  EXPECT_EQ(theirs.status, OwnerStatus::kFound);
  EXPECT_EQ(theirs.uid, kNobody);
  const Owner ours = diag_.TcpOwner(fc.server(), fc.client());
  EXPECT_EQ(ours.status, OwnerStatus::kFound);
  EXPECT_EQ(ours.uid, 0U);
}

TEST_F(IdentRoot, SockDiagIpv6) {
  if (!HaveIpv6Loopback()) GTEST_SKIP() << "no ::1";
  ForeignConnection fc(kNobody, "::1", "::1");
  const Owner o = diag_.TcpOwner(fc.client(), fc.server());
  EXPECT_EQ(o.status, OwnerStatus::kFound);
  EXPECT_EQ(o.uid, kNobody);
}

// The ident connection came to a dual-stack (tcp46) socket: its addresses
// are IPv4-mapped, the connection asked about is a plain IPv4 socket.
TEST_F(IdentRoot, SockDiagIpv4MappedFindsIpv4Socket) {
  if (!HaveIpv6Loopback()) GTEST_SKIP() << "no IPv6";
  ForeignConnection fc(kNobody, "::", "127.0.0.1");
  ASSERT_EQ(fc.client().ss_family, AF_INET6);  // ::ffff:127.0.0.1, seen from here
  const Owner o = diag_.TcpOwner(fc.client(), fc.server());
  EXPECT_EQ(o.status, OwnerStatus::kFound);
  EXPECT_EQ(o.uid, kNobody);
}

TEST_F(IdentRoot, SockDiagNoSuchConnection) {
  socklen_t len;
  EXPECT_EQ(diag_.TcpOwner(Addr("127.0.0.1", 1, &len), Addr("127.0.0.1", 2, &len)).status,
            OwnerStatus::kNoUser);
}

// The kernel's exact lookup falls back to a socket listening on the local
// port; that is not the connection asked about, and its owner (root, here)
// must not be named.
TEST_F(IdentRoot, SockDiagNeverNamesAListener) {
  UniqueFd l = Listen("127.0.0.1");
  sockaddr_storage local = Local(l.Get());
  socklen_t len;
  const Owner o = diag_.TcpOwner(local, Addr("127.0.0.1", 9, &len));
  EXPECT_EQ(o.status, OwnerStatus::kNoUser);
}

TEST_F(IdentRoot, SockDiagClosedConnectionHasNoUser) {
  ForeignConnection fc(kNobody, "127.0.0.1", "127.0.0.1");
  const sockaddr_storage client = fc.client(), server = fc.server();
  ASSERT_EQ(diag_.TcpOwner(client, server).uid, kNobody);
  fc.Close();  // the child's end is in TIME_WAIT now, without an owner
  EXPECT_EQ(diag_.TcpOwner(client, server).status, OwnerStatus::kNoUser);
}

TEST_F(IdentRoot, IdentTupleTakesTheIdentConnectionsAddresses) {
  UniqueFd l = Listen("127.0.0.1");
  sockaddr_storage at = Local(l.Get());
  UniqueFd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(connect(c.Get(), reinterpret_cast<sockaddr*>(&at), sizeof(sockaddr_in)), 0);
  UniqueFd s(accept4(l.Get(), nullptr, nullptr, SOCK_CLOEXEC));
  sockaddr_storage local, remote;
  ASSERT_TRUE(IdentTuple(s.Get(), 6193, 23, &local, &remote));
  EXPECT_EQ(PortOf(local), 6193);
  EXPECT_EQ(PortOf(remote), 23);
  EXPECT_EQ(reinterpret_cast<sockaddr_in&>(local).sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  UniqueFd u(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_FALSE(IdentTuple(u.Get(), 1, 2, &local, &remote));
}

// --- the auth connection, end to end ------------------------------------------

std::vector<std::pair<int, std::string>> g_log;
void CaptureLog(int priority, std::string_view text) {
  g_log.emplace_back(priority & LOG_PRIMASK, std::string(text));
}
bool Logged(const std::string& part) {
  for (const auto& [prio, text] : g_log)
    if (text.find(part) != std::string::npos) return true;
  return false;
}

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000;
}

wire::Service AuthService(const std::vector<std::string>& args) {
  wire::Service s;
  s.set_name("auth");
  s.set_proto("tcp");
  s.set_type(wire::STREAM);
  s.set_builtin("auth");
  s.add_builtin_args("auth");
  for (const std::string& a : args) s.add_builtin_args(a);
  return s;
}

// The names the monitor would send.
void Configure(const wire::Service& svc) {
  wire::Config c;
  *c.add_services() = svc;
  for (auto [uid, name] : {std::pair{0U, "root"}, {kNobody, "nobody"}, {0U, "toor"}}) {
    wire::User* u = c.add_users();
    u->set_uid(uid);
    u->set_name(name);
  }
  ConfigureAuth(c);
}

struct Outcome {
  bool finished = false;  // the connection said it was done
  std::string reply;      // what the client read before EOF
};

// The listener's loop for one connection, in miniature: epoll on
// Interest(), level-triggered. Only system calls the listener's seccomp
// policy allows once constructed (epoll_create1 is in the constructor).
class Pump {
 public:
  Pump() : ep_(epoll_create1(EPOLL_CLOEXEC)) {}

  // Sends `chunks` from `client` one at a time, letting `conn` work between
  // them; half-closes if `shut`; waits up to `ms` for the connection to
  // finish, then closes it and reads what the client got.
  Outcome Run(std::unique_ptr<Conn> conn, int client, const std::vector<std::string>& chunks,
              bool shut = false, int ms = 3000) {
    Outcome out;
    bool open = conn->OnStart();
    epoll_event ev{};
    ev.events = conn->Interest();
    ev.data.u64 = 1;
    epoll_ctl(ep_.Get(), EPOLL_CTL_ADD, conn->fd(), &ev);
    auto turn = [&](int wait_ms) {
      epoll_event got{};
      if (!open || epoll_wait(ep_.Get(), &got, 1, wait_ms) != 1) return false;
      open = conn->OnEvent(got.events);
      if (open) {
        epoll_event mod{};
        mod.events = conn->Interest();
        mod.data.u64 = 1;
        epoll_ctl(ep_.Get(), EPOLL_CTL_MOD, conn->fd(), &mod);
      }
      return true;
    };
    for (const std::string& c : chunks) {
      if (!open) break;
      (void)sendto(client, c.data(), c.size(), MSG_NOSIGNAL, nullptr, 0);
      while (turn(20)) {
      }
    }
    if (shut) shutdown(client, SHUT_WR);
    for (const int64_t end = NowMs() + ms; open && NowMs() < end;) turn(20);
    out.finished = !open;
    epoll_ctl(ep_.Get(), EPOLL_CTL_DEL, conn->fd(), nullptr);
    conn.reset();

    ev.events = EPOLLIN;
    ev.data.u64 = 2;
    epoll_ctl(ep_.Get(), EPOLL_CTL_ADD, client, &ev);
    for (const int64_t end = NowMs() + 2000; NowMs() < end;) {
      epoll_event got{};
      if (epoll_wait(ep_.Get(), &got, 1, 50) != 1) continue;
      char buf[2048];
      ssize_t n = recvfrom(client, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr);
      if (n <= 0) break;
      out.reply.append(buf, static_cast<size_t>(n));
    }
    epoll_ctl(ep_.Get(), EPOLL_CTL_DEL, client, nullptr);
    return out;
  }

 private:
  UniqueFd ep_;
};

// An ident connection over loopback: `client` asks, `server` is what the
// listener would have accepted (non-blocking).
struct IdentLink {
  explicit IdentLink(const char* ip) {
    UniqueFd l = Listen(ip);
    sockaddr_storage at = Local(l.Get());
    client.Reset(socket(at.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(connect(client.Get(), reinterpret_cast<sockaddr*>(&at),
                      at.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)),
              0);
    server.Reset(accept4(l.Get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    EXPECT_TRUE(server.Valid());
  }
  UniqueFd client, server;
};

std::string Query(uint16_t a, uint16_t b, const char* sep = " , ", const char* end = "\r\n") {
  return std::to_string(a) + sep + std::to_string(b) + end;
}

std::string SystemName() {
  utsname u{};
  uname(&u);
  return u.sysname;
}

class AuthConnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to open a connection as another uid";
    PrepareAuth();
    SetLogSink(CaptureLog);
    g_log.clear();
  }

  // Runs one exchange on a fresh ident link against `svc`.
  Outcome Exchange(const wire::Service& svc, const std::vector<std::string>& chunks,
                   bool shut = false, int ms = 3000, const char* ip = "127.0.0.1") {
    Configure(svc);
    IdentLink link(ip);
    return Pump().Run(NewAuthConn(std::move(link.server), svc), link.client.Get(), chunks, shut,
                      ms);
  }
};

TEST_F(AuthConnTest, NamesTheOwner) {
  ForeignConnection fc(kNobody, "127.0.0.1", "127.0.0.1");
  const uint16_t cport = PortOf(fc.client()), sport = PortOf(fc.server());
  const Outcome o = Exchange(AuthService({"-r"}), {Query(cport, sport)});
  EXPECT_TRUE(o.finished);
  EXPECT_EQ(o.reply,
            Query(cport, sport, " , ", "") + " : USERID : " + SystemName() + " : nobody\r\n");
  // The RFC's own spacing and a bare LF are read the same way.
  EXPECT_EQ(Exchange(AuthService({"-r"}), {Query(cport, sport, ",", "\n")}).reply, o.reply);
  // The other end is root's (the accepting socket's owner).
  EXPECT_EQ(Exchange(AuthService({"-r"}), {Query(sport, cport)}).reply,
            Query(sport, cport, " , ", "") + " : USERID : " + SystemName() + " : root\r\n");
}

TEST_F(AuthConnTest, OptionsShapeTheAnswer) {
  ForeignConnection fc(kNobody, "127.0.0.1", "127.0.0.1");
  const uint16_t cport = PortOf(fc.client()), sport = PortOf(fc.server());
  const std::string q = Query(cport, sport);
  const std::string head = Query(cport, sport, " , ", "");
  EXPECT_EQ(Exchange(AuthService({}), {q}).reply, head + " : ERROR : HIDDEN-USER\r\n");
  EXPECT_EQ(Exchange(AuthService({"-r", "-i"}), {q}).reply,
            head + " : USERID : " + SystemName() + " : 65534\r\n");
  EXPECT_EQ(Exchange(AuthService({"-r", "-o", "OTHER"}), {q}).reply,
            head + " : USERID : OTHER : nobody\r\n");
  EXPECT_EQ(Exchange(AuthService({"-r", "-n"}), {q}).reply, head + " : ERROR : HIDDEN-USER\r\n");
  EXPECT_TRUE(Logged("-n needs ~/.noident"));
  const std::string r1 = Exchange(AuthService({"-r", "-g"}), {q}).reply;
  const std::string r2 = Exchange(AuthService({"-r", "-g"}), {q}).reply;
  const std::string prefix = head + " : USERID : " + SystemName() + " : ";
  ASSERT_EQ(r1.size(), prefix.size() + 8 + 2) << r1;
  EXPECT_EQ(r1.substr(0, prefix.size()), prefix);
  EXPECT_NE(r1, r2);  // a fresh name each time
  // No such connection: NO-USER, or -d's name.
  const std::string gone = Query(sport, 1);
  EXPECT_EQ(Exchange(AuthService({"-r"}), {gone}).reply,
            Query(sport, 1, " , ", "") + " : ERROR : NO-USER\r\n");
  EXPECT_EQ(Exchange(AuthService({"-r", "-d", "guest"}), {gone}).reply,
            Query(sport, 1, " , ", "") + " : USERID : " + SystemName() + " : guest\r\n");
}

TEST_F(AuthConnTest, Ipv6) {
  if (!HaveIpv6Loopback()) GTEST_SKIP() << "no ::1";
  ForeignConnection fc(kNobody, "::1", "::1");
  const uint16_t cport = PortOf(fc.client()), sport = PortOf(fc.server());
  EXPECT_EQ(Exchange(AuthService({"-r"}), {Query(cport, sport)}, false, 3000, "::1").reply,
            Query(cport, sport, " , ", "") + " : USERID : " + SystemName() + " : nobody\r\n");
}

TEST_F(AuthConnTest, QueryInPiecesAndPipelined) {
  ForeignConnection fc(kNobody, "127.0.0.1", "127.0.0.1");
  const uint16_t cport = PortOf(fc.client()), sport = PortOf(fc.server());
  const std::string q = Query(cport, sport);
  std::vector<std::string> bytes;
  for (char c : q) bytes.emplace_back(1, c);
  const std::string want =
      Query(cport, sport, " , ", "") + " : USERID : " + SystemName() + " : nobody\r\n";
  EXPECT_EQ(Exchange(AuthService({"-r"}), bytes).reply, want);
  // One query per connection, as FreeBSD: the second is not answered.
  EXPECT_EQ(Exchange(AuthService({"-r"}), {q + q}).reply, want);
}

TEST_F(AuthConnTest, GarbageIsInvalidPort) {
  EXPECT_EQ(Exchange(AuthService({"-r"}), {"hello\r\n"}).reply, "0 , 0 : ERROR : INVALID-PORT\r\n");
  EXPECT_EQ(Exchange(AuthService({"-r"}), {"0 , 80\r\n"}).reply,
            "0 , 80 : ERROR : INVALID-PORT\r\n");
}

TEST_F(AuthConnTest, MalformedInputClosesWithALogLineNamingThePeer) {
  struct {
    std::vector<std::string> chunks;
    bool shut;
    const char* says;
    int priority;
  } cases[] = {
      {{std::string(1200, '1')}, false, "query longer than 1000 bytes", LOG_WARNING},
      {{std::string(600, ' '), std::string(600, ' ')}, false, "query longer than 1000 bytes",
       LOG_WARNING},
      {{std::string("12\0, 34\r\n", 9)}, false, "NUL byte in the query", LOG_WARNING},
      {{"12 , 34"}, true, "query without an end of line", LOG_INFO},
      {{}, true, "closed without a query", LOG_INFO},
  };
  for (const auto& c : cases) {
    g_log.clear();
    const Outcome o = Exchange(AuthService({"-r"}), c.chunks, c.shut);
    EXPECT_TRUE(o.finished) << c.says;
    EXPECT_EQ(o.reply, "") << c.says;
    ASSERT_EQ(g_log.size(), 1U) << c.says;
    EXPECT_EQ(g_log[0].first, c.priority) << c.says;
    EXPECT_NE(g_log[0].second.find(c.says), std::string::npos) << g_log[0].second;
    EXPECT_NE(g_log[0].second.find("auth/tcp from 127.0.0.1 port "), std::string::npos)
        << g_log[0].second;
  }
}

TEST_F(AuthConnTest, SilentClientIsClosedByTheLoopWithALogLine) {
  Configure(AuthService({"-r", "-t", "2.5"}));
  IdentLink link("127.0.0.1");
  std::unique_ptr<Conn> conn =
      NewAuthConn(std::move(link.server), AuthService({"-r", "-t", "2.5"}));
  EXPECT_EQ(conn->LifetimeMs(), 2001);  // 2 s and 5 microseconds, rounded up
  EXPECT_EQ(conn->Interest(), static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(NewAuthConn(UniqueFd(dup(link.client.Get())), AuthService({}))->LifetimeMs(), 10'000);
  g_log.clear();
  const Outcome o = Pump().Run(std::move(conn), link.client.Get(), {}, false, 200);
  EXPECT_FALSE(o.finished);  // still waiting when the "loop" gave up on it
  EXPECT_TRUE(Logged("no complete query in time")) << (g_log.empty() ? "" : g_log[0].second);
}

TEST_F(AuthConnTest, ConfigureLogsBadArgumentsOnce) {
  g_log.clear();
  Configure(AuthService({"-r", "-f", "-t", "soon"}));
  ASSERT_EQ(g_log.size(), 2U);
  EXPECT_EQ(g_log[0].first, LOG_WARNING);
  EXPECT_EQ(g_log[0].second, "auth/tcp: -t \"soon\": not sec[.usec] up to 3600 s: 10 s kept");
  EXPECT_EQ(g_log[1].first, LOG_ERR);
  EXPECT_EQ(g_log[1].second,
            "auth/tcp: -f needs ~/.fakeid, which the sandboxed listener cannot read: every query "
            "is answered HIDDEN-USER");
}

// The same exchange in a child under the listener's seccomp filter: auth
// needs no system call beyond the policy (its netlink socket was opened
// before the filter, as main.cc does).
TEST_F(AuthConnTest, WorksUnderTheListenerPolicy) {
  ForeignConnection fc(kNobody, "127.0.0.1", "127.0.0.1");
  const uint16_t cport = PortOf(fc.client()), sport = PortOf(fc.server());
  const wire::Service svc = AuthService({"-r"});
  Configure(svc);
  IdentLink link("127.0.0.1");
  const std::string want =
      Query(cport, sport, " , ", "") + " : USERID : " + SystemName() + " : nobody\r\n";
  pid_t pid = fork();
  if (pid == 0) {
    Pump pump;
    if (!InstallListenerPolicy()) _exit(100);
    const Outcome o = pump.Run(NewAuthConn(std::move(link.server), svc), link.client.Get(),
                               {Query(cport, sport)});
    _exit(o.finished && o.reply == want ? 0 : 1);
  }
  link.server.Reset();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "status " << status << (WIFSIGNALED(status) ? " (killed by a signal)" : "");
}

}  // namespace
}  // namespace inetd::listener
