// The lookup helper: RunResolver over a real socketpair, in threads here or
// in forked children that own a private network and mount namespace, with
// a fake ident server on 127.0.0.1:113, a fake DNS server on 127.0.0.1:53
// and their own /etc/hosts and /etc/resolv.conf (bind mounts that vanish
// with the child). The filter is tested in forked children.
#include "listener/resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "proto/channel.h"
#include "proto/inetd.pb.h"

namespace {

using inetd::UniqueFd;
using inetd::wire::LookupReply;
using inetd::wire::LookupRequest;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string V4(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return {reinterpret_cast<const char*>(&a), 4};
}

// A resolver on a thread, and the listener's end of its channel.
class Resolver {
 public:
  Resolver() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) abort();
    ours_.Reset(sv[0]);
    theirs_.Reset(sv[1]);
    thread_ = std::thread([this] { status_ = inetd::listener::RunResolver(theirs_.Get()); });
  }
  ~Resolver() {
    ours_.Reset();  // the resolver sees the end of the stream and returns
    thread_.join();
  }
  int fd() const { return ours_.Get(); }

  bool Send(const LookupRequest& r) { return inetd::wire::SendFrame(ours_.Get(), r).has_value(); }
  // The next reply within `wait_ms`.
  std::optional<LookupReply> Next(int wait_ms) {
    pollfd p{ours_.Get(), POLLIN, 0};
    if (poll(&p, 1, wait_ms) != 1) return std::nullopt;
    auto f = inetd::wire::RecvFrame(ours_.Get(), 65536, 0);
    LookupReply rep;
    if (!f || !inetd::wire::Decode(*f, rep)) return std::nullopt;
    return rep;
  }
  // One request, its reply, and how long it took.
  std::optional<LookupReply> Ask(const LookupRequest& r, int64_t* elapsed = nullptr,
                                 int wait_ms = 10'000) {
    const int64_t t0 = NowMs();
    if (!Send(r)) return std::nullopt;
    auto rep = Next(wait_ms);
    if (elapsed != nullptr) *elapsed = NowMs() - t0;
    return rep;
  }

 private:
  UniqueFd ours_, theirs_;
  std::thread thread_;
  int status_ = -1;
};

LookupRequest HostReq(uint64_t id, const std::string& addr, uint32_t timeout_ms = 3000) {
  LookupRequest r;
  r.set_id(id);
  r.set_kind(LookupRequest::HOST_NAME);
  r.set_addr(addr);
  r.set_timeout_ms(timeout_ms);
  return r;
}

constexpr uint32_t kClientPort = 40000;
constexpr uint32_t kOurPort = 23;

LookupRequest UserReq(uint64_t id, uint32_t timeout_ms = 3000) {
  LookupRequest r;
  r.set_id(id);
  r.set_kind(LookupRequest::USER);
  r.set_addr(V4("127.0.0.1"));
  r.set_port(kClientPort);
  r.set_local_addr(V4("127.0.0.1"));
  r.set_local_port(kOurPort);
  r.set_timeout_ms(timeout_ms);
  return r;
}

// --- children in their own namespaces ------------------------------------------

#define CHECK_OR(cond, code)                                                         \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      (void)fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      return code;                                                                   \
    }                                                                                \
  } while (0)

bool LoopbackUp() {
  UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(s.Get(), SIOCGIFFLAGS, &ifr) != 0) return false;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  return ioctl(s.Get(), SIOCSIFFLAGS, &ifr) == 0;
}

// A file for a bind mount, removed with the object.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/resolver_test.XXXXXX";
    UniqueFd fd(mkstemp(name));
    path_ = name;
    if (write(fd.Get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) abort();
    fchmod(fd.Get(), 0644);
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Mounts {
  const TempFile* hosts = nullptr;
  const TempFile* resolv = nullptr;
};

// Runs `body` in a forked child with a network namespace of its own (only
// loopback, up) and, if asked, a private /etc/hosts and /etc/resolv.conf.
// Returns body's result; 77: namespaces not available.
int InChild(const Mounts& m, const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    alarm(30);  // a hung child must not hang the suite
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0 || !LoopbackUp()) _exit(77);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(77);
    if (m.hosts && mount(m.hosts->path().c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0)
      _exit(77);
    if (m.resolv &&
        mount(m.resolv->path().c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0)
      _exit(77);
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

#define EXPECT_CHILD(expr)                                       \
  do {                                                           \
    int rc_ = (expr);                                            \
    if (rc_ == 77) GTEST_SKIP() << "no private namespaces here"; \
    EXPECT_EQ(rc_, 0);                                           \
  } while (0)

// A TCP listener on 127.0.0.1:port.
UniqueFd Listen(int type, uint16_t port) {
  UniqueFd s(socket(AF_INET, type | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(s.Get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s.Get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return {};
  if (type == SOCK_STREAM && listen(s.Get(), 64) != 0) return {};
  return s;
}

// A fake ident server: answers one query with `answer`, after checking it.
// Sets *query to what it was asked.
std::thread IdentServer(int lsock, const std::string& answer, std::string* query) {
  return std::thread([lsock, answer, query] {
    pollfd p{lsock, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return;
    UniqueFd c(accept4(lsock, nullptr, nullptr, SOCK_CLOEXEC));
    char buf[128];
    ssize_t n = recv(c.Get(), buf, sizeof buf, 0);
    if (n > 0) query->assign(buf, static_cast<size_t>(n));
    const ssize_t sent = write(c.Get(), answer.data(), answer.size());
    (void)sent;  // a short answer is for the resolver to judge
  });
}

// One USER lookup against a fake ident server answering `answer`.
int IdentCase(const std::string& answer, LookupReply::State want, const std::string& want_user) {
  UniqueFd l = Listen(SOCK_STREAM, 113);
  CHECK_OR(l.Valid(), 2);
  std::string query;
  std::thread server = IdentServer(l.Get(), answer, &query);
  std::optional<LookupReply> rep;
  {
    Resolver r;
    rep = r.Ask(UserReq(7));
  }
  server.join();
  CHECK_OR(query == "40000 , 23\r\n", 3);
  CHECK_OR(rep.has_value(), 4);
  CHECK_OR(rep->id() == 7, 5);
  CHECK_OR(rep->state() == want, 6);
  CHECK_OR(rep->name() == want_user, 7);
  return 0;
}

TEST(ResolverUser, Found) {
  EXPECT_CHILD(InChild({}, [] {
    return IdentCase("40000 , 23 : USERID : UNIX : alice\r\n", LookupReply::FOUND, "alice");
  }));
}

TEST(ResolverUser, FoundWithCharsetAndNoSpaces) {
  EXPECT_CHILD(InChild({}, [] {
    return IdentCase("40000,23:USERID:UNIX,US-ASCII:bob  \r\n", LookupReply::FOUND, "bob");
  }));
}

TEST(ResolverUser, WrongPortsFail) {
  EXPECT_CHILD(InChild({}, [] {
    return IdentCase("40001 , 23 : USERID : UNIX : alice\r\n", LookupReply::FAILED, "");
  }));
  EXPECT_CHILD(InChild({}, [] {
    return IdentCase("23 , 40000 : USERID : UNIX : alice\r\n", LookupReply::FAILED, "");
  }));
}

TEST(ResolverUser, GarbageFails) {
  using namespace std::string_literals;
  for (const std::string& answer :
       {"hello\r\n"s, "40000 , 23 : ERROR : NO-USER\r\n"s, "40000 , 23 : USERID : UNIX :\r\n"s,
        "40000 , 23 : USERID :: alice\r\n"s, ""s, "40000 , 23 : USERID : UNIX : a\0b\r\n"s,
        "40000 , 23 : USERID : UNIX : alice"s + std::string(1000, ' ') + "\r\n"}) {
    EXPECT_CHILD(InChild({}, [answer] { return IdentCase(answer, LookupReply::FAILED, ""); }));
  }
  // A user name longer than libwrap's 255 bytes is refused, not cut.
  EXPECT_CHILD(InChild({}, [] {
    return IdentCase("40000 , 23 : USERID : UNIX : " + std::string(300, 'u') + "\r\n",
                     LookupReply::FAILED, "");
  }));
}

TEST(ResolverUser, NoIdentServerFails) {
  EXPECT_CHILD(InChild({}, [] {
    Resolver r;
    int64_t ms = 0;
    auto rep = r.Ask(UserReq(3), &ms);
    CHECK_OR(rep && rep->id() == 3 && rep->state() == LookupReply::FAILED, 2);
    CHECK_OR(ms < 1000, 3);  // refused at once
    return 0;
  }));
}

// An ident server that accepts (the kernel's backlog) and never answers:
// every request is answered FAILED by its deadline, also those that wait
// in the queue for one of the four workers.
TEST(ResolverUser, HangingServerAnsweredAtDeadline) {
  EXPECT_CHILD(InChild({}, [] {
    UniqueFd l = Listen(SOCK_STREAM, 113);
    CHECK_OR(l.Valid(), 2);
    Resolver r;
    int64_t ms = 0;
    auto rep = r.Ask(UserReq(1, 200), &ms);
    CHECK_OR(rep && rep->id() == 1 && rep->state() == LookupReply::FAILED, 3);
    CHECK_OR(ms >= 150 && ms < 1000, 4);

    const int64_t t0 = NowMs();
    for (uint64_t id = 10; id < 20; ++id) CHECK_OR(r.Send(UserReq(id, 300)), 5);
    uint64_t seen = 0;
    for (int i = 0; i < 10; ++i) {
      auto x = r.Next(2000);
      CHECK_OR(x && x->state() == LookupReply::FAILED && x->id() >= 10 && x->id() < 20, 6);
      seen |= uint64_t{1} << (x->id() - 10);
    }
    CHECK_OR(seen == 0x3ff, 7);  // exactly one reply each
    CHECK_OR(NowMs() - t0 < 1000, 8);
    CHECK_OR(!r.Next(300), 9);  // and nothing more
    return 0;
  }));
}

// --- HOST_NAME -----------------------------------------------------------------

TEST(ResolverHost, LocalhostFound) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char host[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<sockaddr*>(&a), sizeof a, host, sizeof host, nullptr, 0,
                  NI_NAMEREQD) != 0 ||
      std::string(host) != "localhost")
    GTEST_SKIP() << "127.0.0.1 is not localhost on this machine";
  Resolver r;
  LookupRequest req = HostReq(42, V4("127.0.0.1"));
  req.add_netgroups("no-such-netgroup");
  auto rep = r.Ask(req);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->id(), 42u);
  EXPECT_EQ(rep->state(), LookupReply::FOUND);
  EXPECT_EQ(rep->name(), "localhost");
  EXPECT_EQ(rep->netgroups(), 0u);
  // v4-mapped is looked up as the IPv4 address.
  std::string mapped(10, '\0');
  mapped += "\xff\xff" + V4("127.0.0.1");
  rep = r.Ask(HostReq(43, mapped));
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->state(), LookupReply::FOUND);
  EXPECT_EQ(rep->name(), "localhost");
}

TEST(ResolverHost, NoNameFailsInTime) {
  Resolver r;
  int64_t ms = 0;
  auto rep = r.Ask(HostReq(5, V4("192.0.2.1"), 2000), &ms);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->id(), 5u);
  EXPECT_EQ(rep->state(), LookupReply::FAILED);
  EXPECT_LT(ms, 3000);
}

TEST(ResolverHost, HostsFile) {
  TempFile hosts(
      "127.0.0.1 localhost\n"
      "192.0.2.7 Good.Example good\n"
      "192.0.2.11 10.1.2.3\n");
  EXPECT_CHILD(InChild({&hosts, nullptr}, [] {
    Resolver r;
    auto rep = r.Ask(HostReq(1, V4("192.0.2.7")));
    CHECK_OR(rep && rep->state() == LookupReply::FOUND, 2);
    CHECK_OR(rep->name() == "Good.Example", 3);  // as recorded: the matcher lower-cases
    // A PTR that reads as an address is a lie (libwrap: PARANOID).
    rep = r.Ask(HostReq(2, V4("192.0.2.11")));
    CHECK_OR(rep && rep->state() == LookupReply::PARANOID && rep->name().empty(), 4);
    return 0;
  }));
}

// --- a fake DNS server ---------------------------------------------------------

std::string QName(const uint8_t* p, size_t n, size_t* end) {
  std::string name;
  size_t i = 12;
  while (i < n && p[i] != 0 && i + 1 + p[i] <= n) {
    if (!name.empty()) name += '.';
    name.append(reinterpret_cast<const char*>(p + i + 1), p[i]);
    i += 1 + p[i];
  }
  *end = i + 1;
  return name;
}

std::string Labels(const std::string& name) {
  std::string out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    out += static_cast<char>(dot - start);
    out += name.substr(start, dot - start);
    start = dot + 1;
  }
  return out + '\0';
}

// Answers a PTR for 192.0.2.9 ("liar.example") whose A record is another
// address, a PTR for 192.0.2.8 ("honest.example") that maps back, and
// NXDOMAIN to anything else; with `mute`, never answers. Runs until *stop.
std::thread DnsServer(int sock, bool mute, const bool* stop) {
  return std::thread([sock, mute, stop] {
    for (int round = 0; round < 1000 && !*stop; ++round) {
      pollfd p{sock, POLLIN, 0};
      if (poll(&p, 1, 50) != 1) continue;
      uint8_t q[512];
      sockaddr_storage from{};
      socklen_t flen = sizeof from;
      ssize_t n = recvfrom(sock, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (n < 17 || mute) continue;
      size_t end = 0;
      const std::string name = QName(q, static_cast<size_t>(n), &end);
      if (end + 4 > static_cast<size_t>(n)) continue;
      const int type = q[end] << 8 | q[end + 1];
      std::string rdata;
      int rtype = 0;
      if (type == 12 && name == "9.2.0.192.in-addr.arpa")
        rdata = Labels("liar.example"), rtype = 12;
      if (type == 12 && name == "8.2.0.192.in-addr.arpa")
        rdata = Labels("honest.example"), rtype = 12;
      if (type == 1 && name == "liar.example") rdata = V4("192.0.2.99"), rtype = 1;
      if (type == 1 && name == "honest.example") rdata = V4("192.0.2.8"), rtype = 1;
      std::string out(reinterpret_cast<const char*>(q), end + 4);
      out[2] = static_cast<char>(0x81);
      out[3] = static_cast<char>(rtype != 0 ? 0x80 : 0x83);
      out[4] = 0, out[5] = 1;                                      // one question
      out[6] = 0, out[7] = static_cast<char>(rtype != 0 ? 1 : 0);  // answers
      out[8] = out[9] = out[10] = out[11] = 0;
      if (rtype != 0) {
        out += std::string("\xc0\x0c", 2);
        out += static_cast<char>(0), out += static_cast<char>(rtype);
        out += static_cast<char>(0), out += static_cast<char>(1);  // IN
        out += std::string("\0\0\0\x3c", 4);                       // TTL 60
        out += static_cast<char>(rdata.size() >> 8), out += static_cast<char>(rdata.size() & 0xff);
        out += rdata;
      }
      sendto(sock, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
  });
}

const char kHostsOnlyLocal[] = "127.0.0.1 localhost\n";
const char kResolvLocal[] = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n";

TEST(ResolverHost, ForwardMismatchIsParanoid) {
  TempFile hosts(kHostsOnlyLocal), resolv(kResolvLocal);
  EXPECT_CHILD(InChild({&hosts, &resolv}, [] {
    UniqueFd dns = Listen(SOCK_DGRAM, 53);
    CHECK_OR(dns.Valid(), 2);
    bool stop = false;
    std::thread server = DnsServer(dns.Get(), false, &stop);
    int rc = 0;
    {
      Resolver r;
      auto rep = r.Ask(HostReq(1, V4("192.0.2.8")));
      if (!rep || rep->state() != LookupReply::FOUND || rep->name() != "honest.example") rc = 3;
      rep = r.Ask(HostReq(2, V4("192.0.2.9")));
      if (!rep || rep->state() != LookupReply::PARANOID || !rep->name().empty()) rc = 4;
      rep = r.Ask(HostReq(3, V4("192.0.2.10")));
      if (!rep || rep->state() != LookupReply::FAILED) rc = 5;
    }
    stop = true;
    server.join();
    return rc;
  }));
}

// A DNS server that never answers: the worker is stuck in the resolver's
// own timeout (1 s here), the reply comes at the request's deadline.
TEST(ResolverHost, HangingDnsAnsweredAtDeadline) {
  TempFile hosts(kHostsOnlyLocal), resolv(kResolvLocal);
  EXPECT_CHILD(InChild({&hosts, &resolv}, [] {
    UniqueFd dns = Listen(SOCK_DGRAM, 53);
    CHECK_OR(dns.Valid(), 2);
    bool stop = false;
    std::thread server = DnsServer(dns.Get(), true, &stop);
    int rc = 0;
    {
      Resolver r;
      int64_t ms = 0;
      auto rep = r.Ask(HostReq(1, V4("192.0.2.9"), 200), &ms);
      if (!rep || rep->id() != 1 || rep->state() != LookupReply::FAILED) rc = 3;
      if (ms < 150 || ms > 800) rc = 4;
      // The late result is dropped: no second reply.
      if (r.Next(1500)) rc = 5;
    }
    stop = true;
    server.join();
    return rc;
  }));
}

// --- malformed requests --------------------------------------------------------

TEST(ResolverFraming, MalformedRecordsAreIgnoredOrFailed) {
  Resolver r;
  // Not a message at all: no id to answer, nothing comes back.
  ASSERT_EQ(send(r.fd(), "\xff\xff\xff\xff", 4, 0), 4);
  EXPECT_FALSE(r.Next(200).has_value());
  // Too large a record.
  std::string big(100'000, '\x0a');
  EXPECT_EQ(send(r.fd(), big.data(), big.size(), 0), static_cast<ssize_t>(big.size()));
  EXPECT_FALSE(r.Next(200).has_value());
  // Well-formed, with bad fields: FAILED with its id.
  LookupRequest bad = HostReq(9, "12345");
  auto rep = r.Ask(bad);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->id(), 9u);
  EXPECT_EQ(rep->state(), LookupReply::FAILED);
  LookupRequest unknown = HostReq(10, V4("127.0.0.1"));
  unknown.set_kind(static_cast<LookupRequest::Kind>(7));
  rep = r.Ask(unknown);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->id(), 10u);
  EXPECT_EQ(rep->state(), LookupReply::FAILED);
  LookupRequest user = UserReq(11);
  user.set_port(70000);
  rep = r.Ask(user);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->id(), 11u);
  EXPECT_EQ(rep->state(), LookupReply::FAILED);
  // And it still serves.
  rep = r.Ask(HostReq(12, V4("192.0.2.1"), 2000));
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->id(), 12u);
}

TEST(ResolverFraming, EndsWhenTheListenerCloses) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  close(sv[0]);
  EXPECT_EQ(inetd::listener::RunResolver(sv[1]), 0);
  close(sv[1]);
}

// --- the filter ----------------------------------------------------------------

// Runs `body` in a forked child under the resolver's filter.
int UnderFilter(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    alarm(20);
    if (!inetd::listener::InstallResolverPolicy()) _exit(100);
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

int Errno(long rc) { return rc < 0 ? errno : 0; }

TEST(ResolverFilter, Denied) {
  EXPECT_EQ(UnderFilter([] {
              const char* argv[] = {"/bin/true", nullptr};
              return Errno(syscall(SYS_execve, "/bin/true", argv, nullptr)) == EPERM ? 0 : 1;
            }),
            0);
  EXPECT_EQ(UnderFilter([] {
              pid_t p = fork();
              if (p == 0) _exit(0);
              return p < 0 && errno == EPERM ? 0 : 1;
            }),
            0);
  EXPECT_EQ(
      UnderFilter([] { return Errno(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0)) == EPERM ? 0 : 1; }),
      0);
  EXPECT_EQ(UnderFilter([] { return Errno(syscall(SYS_clone3, nullptr, 0)) == ENOSYS ? 0 : 1; }),
            0);
  EXPECT_EQ(UnderFilter([] { return Errno(socket(AF_PACKET, SOCK_RAW, 0)) == EPERM ? 0 : 1; }), 0);
  EXPECT_EQ(UnderFilter([] {
              // Upper bits of an int argument do not hide AF_PACKET.
              return Errno(syscall(SYS_socket, 0x100000000L | AF_PACKET, SOCK_RAW, 0)) == EPERM ? 0
                                                                                                : 1;
            }),
            0);
  EXPECT_EQ(UnderFilter(
                [] { return Errno(socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT)) == EPERM ? 0 : 1; }),
            0);
  EXPECT_EQ(UnderFilter([] {
              return Errno(open("/tmp/resolver_test.w", O_WRONLY | O_CREAT, 0600)) == EPERM ? 0 : 1;
            }),
            0);
  EXPECT_EQ(UnderFilter([] { return Errno(open("/etc/hosts", O_RDWR)) == EPERM ? 0 : 1; }), 0);
  EXPECT_EQ(
      UnderFilter([] { return Errno(open("/etc/hosts", O_RDONLY | O_TRUNC)) == EPERM ? 0 : 1; }),
      0);
  EXPECT_EQ(UnderFilter([] { return Errno(unshare(CLONE_NEWNET)) == EPERM ? 0 : 1; }), 0);
  EXPECT_EQ(UnderFilter([] { return Errno(setuid(0)) == EPERM ? 0 : 1; }), 0);
  EXPECT_EQ(UnderFilter([] {
              int fd = open("/dev/null", O_RDONLY);
              char c = 'x';
              return Errno(ioctl(fd, TIOCSTI, &c)) == EPERM ? 0 : 1;
            }),
            0);
}

TEST(ResolverFilter, LookupsStillWork) {
  EXPECT_EQ(UnderFilter([] {
              // Threads, read-only files, the sockets NSS uses.
              std::thread t([] {});
              t.join();
              UniqueFd f(open("/etc/hosts", O_RDONLY | O_CLOEXEC));
              if (!f.Valid()) return 1;
              for (int family : {AF_INET, AF_INET6, AF_UNIX}) {
                UniqueFd s(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
                if (!s.Valid()) return 2;
              }
              UniqueFd nl(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
              if (!nl.Valid()) return 3;
              if (isatty(0) < 0) return 4;
              addrinfo hints{};
              hints.ai_flags = AI_ADDRCONFIG;
              hints.ai_socktype = SOCK_STREAM;
              addrinfo* res = nullptr;
              if (getaddrinfo("localhost", nullptr, &hints, &res) != 0) return 5;
              freeaddrinfo(res);
              // The whole server under its own filter.
              int sv[2];
              if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return 6;
              std::thread srv([fd = sv[1]] { inetd::listener::RunResolver(fd); });
              LookupRequest req = HostReq(1, V4("127.0.0.1"));
              int rc = inetd::wire::SendFrame(sv[0], req).has_value() ? 0 : 7;
              pollfd p{sv[0], POLLIN, 0};
              if (rc == 0 && poll(&p, 1, 5000) != 1) rc = 8;
              close(sv[0]);
              srv.join();
              close(sv[1]);
              return rc;
            }),
            0);
}

// --- the real process ----------------------------------------------------------

std::string ReadFile(const std::string& path) {
  UniqueFd f(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string out;
  char buf[4096];
  ssize_t n;
  while (f.Valid() && out.size() < 65536 && (n = read(f.Get(), buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

// StartResolver in a forked "listener": the resolver is named, filtered,
// holds only its channel (and /dev/null on 0-2), answers, and dies with
// its parent.
TEST(ResolverProcess, StartResolver) {
  int report[2];
  ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
  pid_t listener = fork();
  if (listener == 0) {
    alarm(20);
    UniqueFd ch = inetd::listener::StartResolver();
    if (!ch.Valid()) _exit(2);
    if ((fcntl(ch.Get(), F_GETFL) & O_NONBLOCK) == 0) _exit(3);
    std::string kids = ReadFile("/proc/self/task/" + std::to_string(getpid()) + "/children");
    const auto resolver = static_cast<pid_t>(strtol(kids.c_str(), nullptr, 10));
    if (resolver <= 0) _exit(4);
    if (!inetd::wire::SendFrame(ch.Get(), HostReq(77, V4("127.0.0.1"))).has_value()) _exit(6);
    pollfd p{ch.Get(), POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) _exit(7);
    auto f = inetd::wire::RecvFrame(ch.Get(), 65536, 0);
    LookupReply rep;
    if (!f || !inetd::wire::Decode(*f, rep) || rep.id() != 77) _exit(8);
    // Answered: the resolver is set up and serving.
    if (write(report[1], &resolver, sizeof resolver) != sizeof resolver) _exit(5);
    pause();  // until the test kills this "listener"
    _exit(0);
  }
  close(report[1]);
  pid_t resolver = 0;
  const ssize_t got = read(report[0], &resolver, sizeof resolver);
  close(report[0]);
  if (got != static_cast<ssize_t>(sizeof resolver)) {
    int st = 0;
    kill(listener, SIGKILL);
    waitpid(listener, &st, 0);
    FAIL() << "the listener child failed: " << st;
  }
  const std::string proc = "/proc/" + std::to_string(resolver);
  EXPECT_EQ(ReadFile(proc + "/comm"), "inetd-resolver\n");
  const std::string status = ReadFile(proc + "/status");
  EXPECT_NE(status.find("Seccomp:\t2"), std::string::npos) << status;
  EXPECT_NE(status.find("NoNewPrivs:\t1"), std::string::npos);
  // Its fds: 0-2 (/dev/null, or stderr in sanitizer builds), the channel
  // on 3, the eventfd and whatever the workers hold, but nothing of ours.
  char link[256] = {};
  ASSERT_GT(readlink((proc + "/fd/3").c_str(), link, sizeof link - 1), 0);
  EXPECT_EQ(std::string(link).rfind("socket:", 0), 0u) << link;
  memset(link, 0, sizeof link);
  ASSERT_GT(readlink((proc + "/fd/0").c_str(), link, sizeof link - 1), 0);
  EXPECT_STREQ(link, "/dev/null");

  int st = 0;
  kill(listener, SIGKILL);
  waitpid(listener, &st, 0);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << st;
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {  // PDEATHSIG; init reaps it
    const std::string s = ReadFile(proc + "/status");
    gone = s.empty() || s.find("State:\tZ") != std::string::npos;
    if (!gone) usleep(10'000);
  }
  EXPECT_TRUE(gone);
}

}  // namespace
