// The internal services over real sockets: stream built-ins driven through
// a real epoll as the listener's loop drives them, datagram built-ins over
// loopback UDP, and the loop protection with real privileged source ports
// (the tests run as root; without root those cases are skipped).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "listener/builtin.h"
#include "listener/builtin_impl.h"
#include "proto/log.h"

namespace inetd::listener {
namespace {

// --- clock and log capture -------------------------------------------------

time_t g_now = 1'000'000'000;
time_t TestClock() { return g_now; }

std::vector<std::string> g_log;
void CaptureLog(int priority, std::string_view text) {
  if ((priority & LOG_PRIMASK) == LOG_WARNING) g_log.emplace_back(text);
}

class BuiltinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A fresh clock second per test, so the refusal log's rate limit of
    // one line per second never carries over from the test before.
    g_now += 100;
    SetBuiltinClock(TestClock);
    SetLogSink(CaptureLog);
    g_log.clear();
  }
  void TearDown() override { SetBuiltinClock(nullptr); }
};

// --- stream helpers --------------------------------------------------------

std::pair<UniqueFd, UniqueFd> UnixPair() {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

// {server side, client side} of a loopback TCP connection, both non-blocking.
std::pair<UniqueFd, UniqueFd> TcpPair() {
  UniqueFd lfd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(lfd.Get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  EXPECT_EQ(listen(lfd.Get(), 1), 0);
  socklen_t len = sizeof sin;
  EXPECT_EQ(getsockname(lfd.Get(), reinterpret_cast<sockaddr*>(&sin), &len), 0);
  UniqueFd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(connect(client.Get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  UniqueFd server(accept4(lfd.Get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  EXPECT_TRUE(server.Valid());
  EXPECT_EQ(fcntl(client.Get(), F_SETFL, O_NONBLOCK), 0);
  return {std::move(server), std::move(client)};
}

// A one-connection copy of the listener's loop: level-triggered epoll on
// Interest(), re-read after every call; the connection is closed (dropped)
// when it says it is finished.
class Driver {
 public:
  explicit Driver(std::unique_ptr<Conn> conn) : conn_(std::move(conn)), ep_(epoll_create1(0)) {
    if (!conn_->OnStart()) {
      conn_.reset();
      return;
    }
    epoll_event ev{};
    ev.events = conn_->Interest();
    EXPECT_EQ(epoll_ctl(ep_.Get(), EPOLL_CTL_ADD, conn_->fd(), &ev), 0);
  }

  bool alive() const { return conn_ != nullptr; }
  Conn& conn() { return *conn_; }

  // Waits up to timeout_ms for one event and handles it; false if none came.
  bool Step(int timeout_ms) {
    if (!conn_) return false;
    epoll_event ev{};
    if (epoll_wait(ep_.Get(), &ev, 1, timeout_ms) != 1) return false;
    if (!conn_->OnEvent(ev.events)) {
      conn_.reset();
      return true;
    }
    epoll_event mod{};
    mod.events = conn_->Interest();
    EXPECT_EQ(epoll_ctl(ep_.Get(), EPOLL_CTL_MOD, conn_->fd(), &mod), 0);
    return true;
  }

  // Handles events until none comes within timeout_ms (or the conn ends).
  void Settle(int timeout_ms = 20) {
    for (int i = 0; i < 100000 && Step(timeout_ms);) ++i;
  }

 private:
  std::unique_ptr<Conn> conn_;
  UniqueFd ep_;
};

std::unique_ptr<Conn> Make(std::string_view name, UniqueFd fd) {
  const Builtin* b = FindBuiltin(name);
  EXPECT_NE(b, nullptr);
  EXPECT_NE(b->stream, nullptr);
  return b->stream(std::move(fd));
}

// Reads what is there now, without blocking.
std::string ReadAvailable(int fd, size_t max = SIZE_MAX) {
  std::string out;
  char buf[65536];
  while (out.size() < max) {
    const ssize_t n = read(fd, buf, std::min(sizeof buf, max - out.size()));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// True once the peer has closed: read returns 0 (after any data).
bool AtEof(int fd) {
  char c;
  return read(fd, &c, 1) == 0;
}

char Pattern(size_t i) { return static_cast<char>('a' + i % 23); }

// --- table -----------------------------------------------------------------

TEST_F(BuiltinTest, TableNamesEveryBuiltinWithBothForms) {
  for (const char* name : {"echo", "discard", "chargen", "daytime", "time"}) {
    const Builtin* b = FindBuiltin(name);
    ASSERT_NE(b, nullptr) << name;
    EXPECT_EQ(b->name, name);
    EXPECT_NE(b->stream, nullptr) << name;
    EXPECT_NE(b->dgram, nullptr) << name;
  }
  EXPECT_EQ(FindBuiltin("tcpmux-not-here"), nullptr);
  EXPECT_EQ(FindBuiltin("Echo"), nullptr);
  EXPECT_EQ(FindBuiltin(""), nullptr);
}

TEST_F(BuiltinTest, ClockIsInjectableAndResets) {
  EXPECT_EQ(BuiltinNow(), g_now);
  SetBuiltinClock(nullptr);
  const time_t real = time(nullptr);
  EXPECT_LE(std::abs(BuiltinNow() - real), 2);
}

// --- echo ------------------------------------------------------------------

TEST_F(BuiltinTest, EchoStreamEchoes) {
  auto [server, client] = UnixPair();
  Driver d(Make("echo", std::move(server)));
  ASSERT_TRUE(d.alive());
  EXPECT_EQ(d.conn().Interest(), static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(d.conn().LifetimeMs(), 0);
  ASSERT_EQ(write(client.Get(), "hello\r\n", 7), 7);
  d.Settle();
  EXPECT_EQ(ReadAvailable(client.Get()), "hello\r\n");
  EXPECT_TRUE(d.alive());
}

TEST_F(BuiltinTest, EchoHalfCloseEchoesEverythingThenFinishes) {
  auto [server, client] = TcpPair();
  Driver d(Make("echo", std::move(server)));
  std::string sent(200'000, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = Pattern(i);
  std::string got;
  size_t off = 0;
  bool shut = false;
  for (int round = 0; round < 100000 && d.alive(); ++round) {
    if (off < sent.size()) {
      const ssize_t n = write(client.Get(), sent.data() + off, sent.size() - off);
      if (n > 0) off += static_cast<size_t>(n);
    } else if (!shut) {
      ASSERT_EQ(shutdown(client.Get(), SHUT_WR), 0);
      shut = true;
    }
    d.Step(10);
    got += ReadAvailable(client.Get());
  }
  EXPECT_FALSE(d.alive());
  got += ReadAvailable(client.Get());
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent);
  EXPECT_TRUE(AtEof(client.Get()));
}

TEST_F(BuiltinTest, EchoPausesAPeerThatDoesNotRead) {
  auto [server, client] = UnixPair();
  Driver d(Make("echo", std::move(server)));
  std::string chunk(65536, '\0');
  size_t written = 0;
  // Send without ever reading until both directions are full: the echo
  // must then stop reading (no EPOLLIN) instead of buffering more.
  int stuck = 0;
  for (int round = 0; round < 10000 && stuck < 3; ++round) {
    for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = Pattern(written + i);
    const ssize_t n = write(client.Get(), chunk.data(), chunk.size());
    if (n > 0) written += static_cast<size_t>(n);
    const bool moved = d.Step(10);
    stuck = (n <= 0 && !moved) ? stuck + 1 : 0;
  }
  ASSERT_TRUE(d.alive());
  EXPECT_EQ(d.conn().Interest(), static_cast<uint32_t>(EPOLLOUT));
  // Nothing arrives for the connection while it is paused, however long.
  EXPECT_FALSE(d.Step(50));

  // The peer reads: reading resumes and every byte comes back in order.
  std::string got;
  for (int round = 0; round < 100000 && got.size() < written; ++round) {
    got += ReadAvailable(client.Get());
    d.Step(5);
  }
  ASSERT_EQ(got.size(), written);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], Pattern(i)) << "at " << i;
  EXPECT_TRUE(d.conn().Interest() & EPOLLIN);
}

TEST_F(BuiltinTest, EchoFinishesWhenThePeerVanishes) {
  auto [server, client] = UnixPair();
  Driver d(Make("echo", std::move(server)));
  ASSERT_EQ(write(client.Get(), "x", 1), 1);
  client.Reset();
  d.Settle();
  EXPECT_FALSE(d.alive());
}

TEST_F(BuiltinTest, EchoFinishesOnReset) {
  auto [server, client] = TcpPair();
  Driver d(Make("echo", std::move(server)));
  linger lg{1, 0};  // close sends RST
  ASSERT_EQ(setsockopt(client.Get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  client.Reset();
  d.Settle();
  EXPECT_FALSE(d.alive());
}

// --- discard ---------------------------------------------------------------

TEST_F(BuiltinTest, DiscardDropsEverythingAndFinishesAtEof) {
  auto [server, client] = TcpPair();
  Driver d(Make("discard", std::move(server)));
  EXPECT_EQ(d.conn().Interest(), static_cast<uint32_t>(EPOLLIN));
  std::string chunk(65536, 'z');
  size_t written = 0;
  for (int round = 0; round < 100000 && written < size_t{4} * 1024 * 1024; ++round) {
    const ssize_t n = write(client.Get(), chunk.data(), chunk.size());
    if (n > 0) written += static_cast<size_t>(n);
    d.Step(5);
  }
  EXPECT_EQ(written, 4u * 1024 * 1024);
  ASSERT_EQ(shutdown(client.Get(), SHUT_WR), 0);
  d.Settle();
  EXPECT_FALSE(d.alive());
  EXPECT_TRUE(AtEof(client.Get()));  // and not a byte before it
}

// --- chargen ---------------------------------------------------------------

// Byte i of the stream: line i/74 starts with ' ' + line % 95.
char ChargenAt(size_t i) {
  const size_t line = i / 74, col = i % 74;
  if (col == 72) return '\r';
  if (col == 73) return '\n';
  return static_cast<char>(0x20 + (line + col) % 95);
}

TEST_F(BuiltinTest, ChargenStreamFollowsThePatternByteForByte) {
  auto [server, client] = TcpPair();
  Driver d(Make("chargen", std::move(server)));
  EXPECT_EQ(d.conn().LifetimeMs(), kMaxLifetimeMs);
  const size_t want = 3 * 1024 * 1024 + 12345;  // many cycles, many sends
  std::string got;
  for (int round = 0; round < 100000 && got.size() < want; ++round) {
    d.Step(10);
    got += ReadAvailable(client.Get(), want - got.size());
  }
  ASSERT_EQ(got.size(), want);
  EXPECT_EQ(got.substr(0, 74),
            " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n");
  EXPECT_EQ(got.substr(74, 74),
            "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n");
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], ChargenAt(i)) << "at byte " << i;
}

TEST_F(BuiltinTest, ChargenDropsInputAndGoesOnAfterHalfClose) {
  auto [server, client] = UnixPair();
  Driver d(Make("chargen", std::move(server)));
  EXPECT_EQ(d.conn().Interest(), static_cast<uint32_t>(EPOLLIN | EPOLLOUT));
  ASSERT_EQ(write(client.Get(), "ignored", 7), 7);
  ASSERT_EQ(shutdown(client.Get(), SHUT_WR), 0);
  std::string got;
  for (int round = 0; round < 1000 && got.size() < 10000; ++round) {
    d.Step(10);
    got += ReadAvailable(client.Get(), 10000 - got.size());
  }
  ASSERT_TRUE(d.alive());
  EXPECT_EQ(d.conn().Interest(), static_cast<uint32_t>(EPOLLOUT));  // nothing left to read
  ASSERT_EQ(got.size(), 10000u);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], ChargenAt(i)) << "at byte " << i;
}

TEST_F(BuiltinTest, ChargenFinishesWhenTheReaderGoes) {
  auto [server, client] = TcpPair();
  Driver d(Make("chargen", std::move(server)));
  d.Step(10);
  client.Reset();
  for (int round = 0; round < 1000 && d.alive(); ++round) d.Step(10);
  EXPECT_FALSE(d.alive());
}

TEST_F(BuiltinTest, ChargenSendsLargeChunks) {
  auto [server, client] = TcpPair();
  int big = 4 * 1024 * 1024;
  ASSERT_EQ(setsockopt(client.Get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big), 0);
  Driver d(Make("chargen", std::move(server)));
  ASSERT_TRUE(d.Step(1000));  // one event
  EXPECT_GE(ReadAvailable(client.Get()).size(), 65536u);
}

// --- daytime and time ------------------------------------------------------

TEST_F(BuiltinTest, DaytimeStreamAnswersAtOnceAndCloses) {
  g_now = 1795306354;  // Sun Nov 22 00:12:34 UTC 2026
  auto [server, client] = UnixPair();
  Driver d(Make("daytime", std::move(server)));
  EXPECT_FALSE(d.alive());  // answered in OnStart
  EXPECT_EQ(ReadAvailable(client.Get()), "Sun Nov 22 00:12:34 2026\r\n");
  EXPECT_TRUE(AtEof(client.Get()));
}

TEST_F(BuiltinTest, DaytimeFormatMatchesAsctimeInUtc) {
  std::vector<time_t> times = {0, -1, 59, 86399, 86400, 951782400 /* 2000-02-29 */,
                               951868800, 4107542400 /* 2100-03-01 */, 1795306354,
                               2147483647, -2147483648LL, 253402300799 /* 9999-12-31 */,
                               -11644473600 /* 1601-01-01 */, -62135596800 /* 0001-01-01 */};
  // And a day's worth of steps through four centuries.
  for (time_t t = -12'219'292'800; t < 13'000'000'000; t += 86'400 * 97 + 3'671) times.push_back(t);
  for (time_t t : times) {
    tm tmv{};
    ASSERT_NE(gmtime_r(&t, &tmv), nullptr) << t;
    char want[64];
    char at[32];
    ASSERT_NE(asctime_r(&tmv, at), nullptr);
    ASSERT_GT(snprintf(want, sizeof want, "%.24s\r\n", at), 0);
    std::array<char, ReplyConn::kMaxReply> out;
    const size_t n = FormatDaytime(t, out);
    EXPECT_EQ(std::string(out.data(), n), want) << "t=" << t;
  }
  std::array<char, ReplyConn::kMaxReply> out;
  EXPECT_EQ(std::string(out.data(), FormatDaytime(0, out)), "Thu Jan  1 00:00:00 1970\r\n");
  // Past year 9999 the text is cut at 24 characters, as "%.24s" does; before
  // year 1000 the cut keeps ctime's own newline, as on FreeBSD.
  EXPECT_EQ(std::string(out.data(), FormatDaytime(-62135596800, out)),
            "Mon Jan  1 00:00:00 1\n\r\n");
  EXPECT_EQ(FormatDaytime(253402300800, out), 26u);
  EXPECT_EQ(std::string(out.data(), 26), "Sat Jan  1 00:00:00 1000\r\n");
}

std::string Be32(uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  return std::string(b, 4);
}

TEST_F(BuiltinTest, TimeStreamSendsBigEndianSecondsSince1900) {
  g_now = 0;
  auto [server, client] = UnixPair();
  Driver d(Make("time", std::move(server)));
  EXPECT_FALSE(d.alive());
  EXPECT_EQ(ReadAvailable(client.Get()), std::string("\x83\xaa\x7e\x80", 4));  // 2208988800
  EXPECT_TRUE(AtEof(client.Get()));

  EXPECT_EQ(SecondsSince1900(1795306354), 1795306354u + 2208988800u);
  EXPECT_EQ(SecondsSince1900(2085978496), 0u);  // 2036-02-07 06:28:16: the wrap
  EXPECT_EQ(SecondsSince1900(-2208988800), 0u);
}

// --- datagrams -------------------------------------------------------------

struct Udp {
  UniqueFd fd;
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// A UDP socket bound to `host` and `port` (0: any); invalid if bind fails.
Udp BindUdp(int family, const char* host, uint16_t port, bool v6only = true) {
  Udp u;
  u.fd = UniqueFd(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!u.fd.Valid()) return u;
  int one = 1;
  setsockopt(u.fd.Get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) {
    int only = v6only ? 1 : 0;
    setsockopt(u.fd.Get(), IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only);
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    inet_pton(AF_INET6, host, &sin6.sin6_addr);
    memcpy(&u.addr, &sin6, sizeof sin6);
    u.len = sizeof sin6;
  } else {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    inet_pton(AF_INET, host, &sin.sin_addr);
    memcpy(&u.addr, &sin, sizeof sin);
    u.len = sizeof sin;
  }
  if (bind(u.fd.Get(), reinterpret_cast<sockaddr*>(&u.addr), u.len) != 0 ||
      getsockname(u.fd.Get(), reinterpret_cast<sockaddr*>(&u.addr), &u.len) != 0) {
    u.fd.Reset();
  }
  return u;
}

// Sends `data` from `from` to `to`'s address (host given for dual-stack).
void SendTo(const Udp& from, const Udp& to, const std::string& data, const char* v4host = nullptr) {
  if (v4host != nullptr) {  // reach a dual-stack socket over IPv4
    sockaddr_in6 sin6;
    memcpy(&sin6, &to.addr, sizeof sin6);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = sin6.sin6_port;
    inet_pton(AF_INET, v4host, &sin.sin_addr);
    ASSERT_EQ(sendto(from.fd.Get(), data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&sin),
                     sizeof sin),
              static_cast<ssize_t>(data.size()));
    return;
  }
  ASSERT_EQ(sendto(from.fd.Get(), data.data(), data.size(), 0,
                   reinterpret_cast<const sockaddr*>(&to.addr), to.len),
            static_cast<ssize_t>(data.size()));
}

// The next datagram within timeout_ms, or nullopt-like "<none>".
std::string Receive(const Udp& u, int timeout_ms = 1000) {
  pollfd p{u.fd.Get(), POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return "<none>";
  std::string buf(70000, '\0');
  const ssize_t n = recv(u.fd.Get(), buf.data(), buf.size(), MSG_DONTWAIT);
  if (n < 0) return "<error>";
  buf.resize(static_cast<size_t>(n));
  return buf;
}

// Runs the handler on one queued datagram: it reads it, then finds none.
void Serve(DgramHandler h, const Udp& server) {
  pollfd p{server.fd.Get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 1000), 1);
  EXPECT_TRUE(h(server.fd.Get()));
  EXPECT_FALSE(h(server.fd.Get()));  // EAGAIN
}

DgramHandler Dgram(std::string_view name) { return FindBuiltin(name)->dgram; }

TEST_F(BuiltinTest, EchoDgramEchoesWholeDatagrams) {
  Udp server = BindUdp(AF_INET, "127.0.0.1", 0), client = BindUdp(AF_INET, "127.0.0.1", 0);
  ASSERT_TRUE(server.fd.Valid() && client.fd.Valid());
  EXPECT_FALSE(Dgram("echo")(server.fd.Get()));  // nothing queued
  SendTo(client, server, "ping");
  Serve(Dgram("echo"), server);
  EXPECT_EQ(Receive(client), "ping");

  std::string big(65000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = Pattern(i);
  SendTo(client, server, big);
  Serve(Dgram("echo"), server);
  EXPECT_TRUE(Receive(client) == big);

  SendTo(client, server, "");
  Serve(Dgram("echo"), server);
  EXPECT_EQ(Receive(client), "");
  EXPECT_TRUE(g_log.empty());
}

TEST_F(BuiltinTest, EchoDgramOverIpv6AndV4Mapped) {
  Udp server6 = BindUdp(AF_INET6, "::1", 0), client6 = BindUdp(AF_INET6, "::1", 0);
  if (!server6.fd.Valid() || !client6.fd.Valid()) GTEST_SKIP() << "no IPv6 loopback";
  SendTo(client6, server6, "six");
  Serve(Dgram("echo"), server6);
  EXPECT_EQ(Receive(client6), "six");

  Udp dual = BindUdp(AF_INET6, "::", 0, /*v6only=*/false);
  Udp client4 = BindUdp(AF_INET, "127.0.0.1", 0);
  ASSERT_TRUE(dual.fd.Valid() && client4.fd.Valid());
  SendTo(client4, dual, "mapped", "127.0.0.1");
  Serve(Dgram("echo"), dual);
  EXPECT_EQ(Receive(client4), "mapped");
}

TEST_F(BuiltinTest, DiscardDgramAnswersNothing) {
  Udp server = BindUdp(AF_INET, "127.0.0.1", 0), client = BindUdp(AF_INET, "127.0.0.1", 0);
  ASSERT_TRUE(server.fd.Valid() && client.fd.Valid());
  SendTo(client, server, std::string(3000, 'q'));
  Serve(Dgram("discard"), server);
  EXPECT_EQ(Receive(client, 100), "<none>");
}

TEST_F(BuiltinTest, ChargenDgramSendsOneLineMovingOn) {
  Udp server = BindUdp(AF_INET, "127.0.0.1", 0), client = BindUdp(AF_INET, "127.0.0.1", 0);
  ASSERT_TRUE(server.fd.Valid() && client.fd.Valid());
  std::vector<std::string> lines;
  for (int i = 0; i < 97; ++i) {
    SendTo(client, server, "x");
    Serve(Dgram("chargen"), server);
    lines.push_back(Receive(client));
    ASSERT_EQ(lines.back().size(), 74u);
  }
  // Consecutive answers are consecutive lines of the pattern, 95 apart equal.
  const char first = lines[0][0];
  for (size_t k = 0; k < lines.size(); ++k) {
    const size_t start = static_cast<size_t>(first - 0x20) + k;
    for (size_t col = 0; col < 74; ++col) ASSERT_EQ(lines[k][col], ChargenAt(start * 74 + col));
  }
  EXPECT_EQ(lines[0], lines[95]);
}

TEST_F(BuiltinTest, DaytimeAndTimeDgramAnswer) {
  g_now = 1795306354;
  Udp server = BindUdp(AF_INET, "127.0.0.1", 0), client = BindUdp(AF_INET, "127.0.0.1", 0);
  ASSERT_TRUE(server.fd.Valid() && client.fd.Valid());
  SendTo(client, server, "what time is it?");
  Serve(Dgram("daytime"), server);
  EXPECT_EQ(Receive(client), "Sun Nov 22 00:12:34 2026\r\n");
  SendTo(client, server, "");
  Serve(Dgram("time"), server);
  EXPECT_EQ(Receive(client), Be32(1795306354u + 2208988800u));
}

// --- loop protection -------------------------------------------------------

sockaddr_storage V4(const char* host, uint16_t port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  inet_pton(AF_INET, host, &sin.sin_addr);
  sockaddr_storage ss{};
  memcpy(&ss, &sin, sizeof sin);
  return ss;
}

sockaddr_storage V6(const char* host, uint16_t port) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  inet_pton(AF_INET6, host, &sin6.sin6_addr);
  sockaddr_storage ss{};
  memcpy(&ss, &sin6, sizeof sin6);
  return ss;
}

TEST_F(BuiltinTest, ClassifySourceTable) {
  struct Case {
    sockaddr_storage peer;
    socklen_t len;
    Refusal want;
  };
  const socklen_t l4 = sizeof(sockaddr_in), l6 = sizeof(sockaddr_in6);
  const Case cases[] = {
      {V4("192.0.2.1", 40000), l4, Refusal::kNone},
      {V4("127.0.0.1", 1024), l4, Refusal::kNone},
      {V4("127.0.0.1", 1023), l4, Refusal::kPrivilegedPort},
      {V4("127.0.0.1", 0), l4, Refusal::kPrivilegedPort},
      {V4("127.0.0.1", 53), l4, Refusal::kPrivilegedPort},
      {V4("127.0.0.1", 7), l4, Refusal::kLoop},
      {V4("10.1.2.3", 9), l4, Refusal::kLoop},
      {V4("10.1.2.3", 13), l4, Refusal::kLoop},
      {V4("10.1.2.3", 19), l4, Refusal::kLoop},
      {V4("10.1.2.3", 37), l4, Refusal::kLoop},
      {V4("224.0.0.1", 40000), l4, Refusal::kBadAddress},
      {V4("239.255.255.250", 40000), l4, Refusal::kBadAddress},
      {V4("255.255.255.255", 40000), l4, Refusal::kBadAddress},
      {V4("240.0.0.1", 40000), l4, Refusal::kBadAddress},
      {V4("0.0.0.0", 40000), l4, Refusal::kBadAddress},
      {V4("0.1.2.3", 40000), l4, Refusal::kBadAddress},
      {V4("223.255.255.254", 40000), l4, Refusal::kNone},
      {V4("127.0.0.1", 40000), l4 - 1, Refusal::kBadFamily},  // short
      {V6("2001:db8::1", 40000), l6, Refusal::kNone},
      {V6("::1", 40000), l6, Refusal::kNone},
      {V6("::1", 19), l6, Refusal::kLoop},
      {V6("2001:db8::1", 512), l6, Refusal::kPrivilegedPort},
      {V6("ff02::1", 40000), l6, Refusal::kBadAddress},
      {V6("ff05::2", 40000), l6, Refusal::kBadAddress},
      {V6("::", 40000), l6, Refusal::kBadAddress},
      {V6("::ffff:127.0.0.1", 40000), l6, Refusal::kNone},
      {V6("::ffff:127.0.0.1", 7), l6, Refusal::kLoop},
      {V6("::ffff:224.0.0.1", 40000), l6, Refusal::kBadAddress},
      {V6("::ffff:255.255.255.255", 40000), l6, Refusal::kBadAddress},
      {V6("::ffff:0.0.0.0", 40000), l6, Refusal::kBadAddress},
      {V6("::1", 40000), l6 - 1, Refusal::kBadFamily},
  };
  for (const Case& c : cases) {
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (c.peer.ss_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&c.peer);
      inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
      port = ntohs(sin->sin_port);
    } else {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&c.peer);
      inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
      port = ntohs(sin6->sin6_port);
    }
    EXPECT_EQ(ClassifySource(c.peer, c.len), c.want) << host << " port " << port;
  }
  sockaddr_storage unix_peer{};
  unix_peer.ss_family = AF_UNIX;
  EXPECT_EQ(ClassifySource(unix_peer, sizeof unix_peer), Refusal::kBadFamily);
}

// A client socket on a privileged port: needs root (tests run as root).
Udp PrivilegedClient(int family, const char* host, uint16_t port) {
  Udp u = BindUdp(family, host, port);
  return u;
}

TEST_F(BuiltinTest, DgramFromABuiltinPortIsNotAnswered) {
  Udp server = BindUdp(AF_INET, "127.0.0.1", 0);
  ASSERT_TRUE(server.fd.Valid());
  Udp from_chargen = PrivilegedClient(AF_INET, "127.0.0.1", 19);
  if (!from_chargen.fd.Valid()) GTEST_SKIP() << "cannot bind port 19: " << strerror(errno);
  // A forged echo <-> chargen storm: the echo must not answer.
  SendTo(from_chargen, server, "storm");
  Serve(Dgram("echo"), server);
  EXPECT_EQ(Receive(from_chargen, 100), "<none>");
  ASSERT_EQ(g_log.size(), 1u);
  EXPECT_EQ(g_log[0], "echo/udp:chargen/udp loop request REFUSED from 127.0.0.1");

  for (const char* name : {"chargen", "daytime", "time"}) {
    SendTo(from_chargen, server, "storm");
    Serve(Dgram(name), server);
    EXPECT_EQ(Receive(from_chargen, 50), "<none>") << name;
  }
  EXPECT_EQ(g_log.size(), 4u);  // one line each: every handler has its own limit
}

TEST_F(BuiltinTest, DgramFromAPrivilegedPortIsNotAnswered) {
  Udp server = BindUdp(AF_INET6, "::", 0, /*v6only=*/false);
  ASSERT_TRUE(server.fd.Valid());
  Udp from_dns = PrivilegedClient(AF_INET, "127.0.0.1", 1000);
  if (!from_dns.fd.Valid()) GTEST_SKIP() << "cannot bind port 1000: " << strerror(errno);
  SendTo(from_dns, server, "amplify me", "127.0.0.1");
  Serve(Dgram("chargen"), server);
  EXPECT_EQ(Receive(from_dns, 100), "<none>");
  ASSERT_EQ(g_log.size(), 1u);
  EXPECT_EQ(g_log[0],
            "chargen/udp6 request REFUSED from ::ffff:127.0.0.1 port 1000: privileged source port");
}

TEST_F(BuiltinTest, RefusalLogIsRateLimited) {
  Udp server = BindUdp(AF_INET, "127.0.0.1", 0);
  ASSERT_TRUE(server.fd.Valid());
  Udp from7 = PrivilegedClient(AF_INET, "127.0.0.1", 7);
  if (!from7.fd.Valid()) GTEST_SKIP() << "cannot bind port 7: " << strerror(errno);
  for (int i = 0; i < 5; ++i) {
    SendTo(from7, server, "flood");
    Serve(Dgram("time"), server);
  }
  ASSERT_EQ(g_log.size(), 1u);  // same clock second: one line
  ++g_now;
  SendTo(from7, server, "flood");
  Serve(Dgram("time"), server);
  ASSERT_EQ(g_log.size(), 2u);
  EXPECT_EQ(g_log[1], "time/udp:echo/udp loop request REFUSED from 127.0.0.1 (4 more suppressed)");
  EXPECT_EQ(Receive(from7, 50), "<none>");
}

}  // namespace
}  // namespace inetd::listener
