// A forged listener: the test takes the listener's place on the control
// channel of a real Monitor (real config, real bound sockets, real fork) and
// sends everything a compromised listener could. Each bad request must end
// in a refusal or a violation, never a spawn.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "privileged/monitor.h"
#include "proto/channel.h"
#include "proto/inetd.pb.h"
#include "proto/log.h"

using namespace inetd;
using namespace inetd::priv;

namespace {

// Every log line the monitor writes, so tests can require the reason.
std::vector<std::string> g_log;
void Capture(int, std::string_view text) { g_log.emplace_back(text); }
bool Logged(const std::string& needle) {
  for (const auto& l : g_log)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}

uint16_t FreePort(int type) {
  UniqueFd s(socket(AF_INET, type, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(bind(s.Get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(getsockname(s.Get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  return ntohs(a.sin_port);
}

UniqueFd Connect(uint16_t port, int type = SOCK_STREAM) {
  UniqueFd s(socket(AF_INET, type | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(s.Get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return s;
}

class ForgedListener : public testing::Test {
 protected:
  void SetUp() override {
    g_log.clear();
    SetLogSink(Capture);
    tcp_port_ = FreePort(SOCK_STREAM);
    other_port_ = FreePort(SOCK_STREAM);
    udp_port_ = FreePort(SOCK_DGRAM);
    marker_ = "/tmp/inetd-forged-" + std::to_string(getpid());
    unlink(marker_.c_str());
    conf_ = marker_ + ".conf";
    std::ofstream(conf_) << "127.0.0.1:\n"
                         << tcp_port_ << " stream tcp nowait/1 nobody /bin/sh sh -c 'touch "
                         << marker_ << "; sleep 1'\n"
                         << udp_port_ << " dgram udp wait nobody /bin/sh sh -c 'touch " << marker_
                         << "'\n"
                         << other_port_ << " stream tcp nowait nobody /bin/true true\n";
    Options o;
    o.config = conf_;
    monitor_ = std::make_unique<Monitor>(o);
    ASSERT_TRUE(monitor_->Load());
    ASSERT_EQ(monitor_->services().size(), 3u);
    Reattach();
  }
  void TearDown() override {
    // Reap whatever a (wrongly) spawned child left, bounded.
    for (int i = 0; i < 50 && monitor_->child_count() > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      monitor_->Reap();
    }
    unlink(conf_.c_str());
    unlink(marker_.c_str());
  }

  // A fresh channel, as the monitor has after restarting a listener.
  void Reattach() {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    peer_.Reset(sv[1]);
    monitor_->Attach(UniqueFd(sv[0]), -1);
  }

  // Hello, and the Config it brings back with the listening sockets.
  void Hello() {
    wire::ToMonitor m;
    m.mutable_hello()->set_version(1);
    Send(m);
    ASSERT_EQ(monitor_->OnControlReadable(), Verdict::kOk);
    auto f = wire::RecvFrame(peer_.Get(), wire::kMaxFrame, wire::kMaxFds, MSG_DONTWAIT);
    ASSERT_TRUE(f.has_value());
    wire::ToListener reply;
    ASSERT_TRUE(wire::Decode(*f, reply));
    ASSERT_TRUE(reply.has_config());
    ASSERT_EQ(f->fds.size(), 3u);
    config_ = reply.config();
    sockets_ = std::move(f->fds);
  }

  void Send(const wire::ToMonitor& m, std::vector<int> fds = {}) {
    ASSERT_TRUE(wire::SendFrame(peer_.Get(), m, fds).has_value());
  }

  Verdict SendSpawn(uint32_t id, uint64_t gen, std::vector<int> fds) {
    wire::ToMonitor m;
    m.mutable_spawn()->set_service(id);
    m.mutable_spawn()->set_generation(gen);
    Send(m, fds);
    return monitor_->OnControlReadable();
  }

  // The monitor's answer, if any.
  std::optional<wire::ToListener> Reply() {
    auto f = wire::RecvFrame(peer_.Get(), wire::kMaxFrame, wire::kMaxFds, MSG_DONTWAIT);
    if (!f) return std::nullopt;
    wire::ToListener r;
    if (!wire::Decode(*f, r)) return std::nullopt;
    return r;
  }

  // An accepted connection on service `id`, as the real listener would make.
  UniqueFd Accepted(uint32_t id, uint16_t port, UniqueFd& client) {
    client = Connect(port);
    return UniqueFd(accept4(sockets_[id].Get(), nullptr, nullptr, SOCK_CLOEXEC));
  }

  bool Spawned() { return access(marker_.c_str(), F_OK) == 0 || monitor_->child_count() > 0; }

  std::unique_ptr<Monitor> monitor_;
  UniqueFd peer_;
  wire::Config config_;
  std::vector<UniqueFd> sockets_;
  uint16_t tcp_port_, other_port_, udp_port_;
  std::string marker_, conf_;
};

TEST_F(ForgedListener, SpawnBeforeHelloIsViolation) {
  UniqueFd client;
  EXPECT_EQ(SendSpawn(0, 1, {}), Verdict::kViolation);
  EXPECT_TRUE(Logged("protocol violation: request not allowed in this state"));
  EXPECT_FALSE(monitor_->running());
  EXPECT_FALSE(Spawned());
}

TEST_F(ForgedListener, UnknownProtocolVersionIsViolation) {
  wire::ToMonitor m;
  m.mutable_hello()->set_version(kProtocolVersion + 1);
  Send(m);
  EXPECT_EQ(monitor_->OnControlReadable(), Verdict::kViolation);
  EXPECT_TRUE(Logged("protocol violation: unknown protocol version"));
  EXPECT_FALSE(monitor_->running());
}

TEST_F(ForgedListener, ConnectionOnAnotherAddressIsViolation) {
  Hello();
  // Same port as service 0, but accepted on 127.0.0.2: not that service's.
  UniqueFd lst(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int on = 1;
  setsockopt(lst.Get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(tcp_port_);
  a.sin_addr.s_addr = htonl(0x7f000002);
  ASSERT_EQ(bind(lst.Get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(lst.Get(), 1), 0);
  UniqueFd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(connect(client.Get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  UniqueFd conn(accept4(lst.Get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_EQ(SendSpawn(0, config_.generation(), {conn.Get()}), Verdict::kViolation);
  EXPECT_TRUE(Logged("socket not accepted on this service's port"));
  EXPECT_FALSE(Spawned());
}

TEST_F(ForgedListener, SecondHelloIsViolation) {
  Hello();
  wire::ToMonitor m;
  m.mutable_hello();
  Send(m);
  EXPECT_EQ(monitor_->OnControlReadable(), Verdict::kViolation);
}

TEST_F(ForgedListener, ValidSpawnRunsTheServiceOnce) {
  Hello();
  UniqueFd client;
  UniqueFd conn = Accepted(0, tcp_port_, client);
  ASSERT_TRUE(conn.Valid());
  EXPECT_EQ(SendSpawn(0, config_.generation(), {conn.Get()}), Verdict::kOk);
  auto r = Reply();
  ASSERT_TRUE(r && r->has_spawned());
  EXPECT_GT(r->spawned().pid(), 0);
  EXPECT_EQ(monitor_->child_count(), 1u);
  // max-child 1: the second connection is refused while the first runs.
  UniqueFd client2;
  UniqueFd conn2 = Accepted(0, tcp_port_, client2);
  EXPECT_EQ(SendSpawn(0, config_.generation(), {conn2.Get()}), Verdict::kRefused);
  r = Reply();
  ASSERT_TRUE(r && r->has_refused());
  EXPECT_EQ(r->refused().reason(), "max-child reached");
  EXPECT_EQ(monitor_->child_count(), 1u);
  // The child exits; the listener hears of it.
  for (int i = 0; i < 60 && monitor_->child_count() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    monitor_->Reap();
  }
  EXPECT_EQ(monitor_->child_count(), 0u);
  r = Reply();
  ASSERT_TRUE(r && r->has_exited());
  EXPECT_EQ(r->exited().service(), 0u);
}

TEST_F(ForgedListener, UnknownServiceIdIsViolation) {
  Hello();
  UniqueFd client;
  UniqueFd conn = Accepted(0, tcp_port_, client);
  EXPECT_EQ(SendSpawn(99, config_.generation(), {conn.Get()}), Verdict::kViolation);
  EXPECT_TRUE(Logged("protocol violation: unknown service id"));
  EXPECT_FALSE(Spawned());
}

TEST_F(ForgedListener, StaleGenerationIsRefused) {
  Hello();
  UniqueFd client;
  UniqueFd conn = Accepted(0, tcp_port_, client);
  EXPECT_EQ(SendSpawn(0, config_.generation() + 5, {conn.Get()}), Verdict::kRefused);
  auto r = Reply();
  ASSERT_TRUE(r && r->has_refused());
  EXPECT_EQ(r->refused().reason(), "stale generation");
  EXPECT_FALSE(Spawned());
}

TEST_F(ForgedListener, WrongFdCountIsViolation) {
  Hello();
  EXPECT_EQ(SendSpawn(0, config_.generation(), {}), Verdict::kViolation);
  Reattach();
  Hello();
  UniqueFd client;
  UniqueFd conn = Accepted(0, tcp_port_, client);
  // Two fds where one is allowed: RecvFrame refuses, and closes both.
  EXPECT_EQ(SendSpawn(0, config_.generation(), {conn.Get(), conn.Get()}), Verdict::kViolation);
  EXPECT_FALSE(Spawned());
}

TEST_F(ForgedListener, WrongFdKindsAreViolations) {
  Hello();
  int pipefd[2];
  ASSERT_EQ(pipe2(pipefd, O_CLOEXEC), 0);
  UniqueFd r(pipefd[0]), w(pipefd[1]);
  UniqueFd dir(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  UniqueFd udp(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  UniqueFd other_client;
  UniqueFd other_conn = Accepted(2, other_port_, other_client);  // another service's connection
  UniqueFd unix_pair[2];
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  unix_pair[0].Reset(sv[0]);
  unix_pair[1].Reset(sv[1]);
  const std::pair<int, const char*> bad[] = {
      {w.Get(), "fd is not a socket"},
      {dir.Get(), "fd is not a socket"},
      {udp.Get(), "socket of the wrong type"},
      {sockets_[0].Get(), "a listening socket, not a connection"},
      {other_conn.Get(), "socket not accepted on this service's port"},
      {unix_pair[0].Get(), "socket of the wrong family"},
  };
  for (auto [fd, why] : bad) {
    g_log.clear();
    EXPECT_EQ(SendSpawn(0, config_.generation(), {fd}), Verdict::kViolation) << why;
    EXPECT_TRUE(Logged(std::string("protocol violation: ") + why)) << why;
    Reattach();
    Hello();
  }
  EXPECT_FALSE(Spawned());
}

TEST_F(ForgedListener, RequestKindMustMatchTheService) {
  Hello();
  // Readable for a nowait stream service.
  wire::ToMonitor m;
  m.mutable_readable()->set_service(0);
  m.mutable_readable()->set_generation(config_.generation());
  Send(m);
  EXPECT_EQ(monitor_->OnControlReadable(), Verdict::kViolation);
  Reattach();
  Hello();
  // Spawn for the wait dgram service, with a UDP socket on its port.
  UniqueFd udp = Connect(udp_port_, SOCK_DGRAM);
  EXPECT_EQ(SendSpawn(1, config_.generation(), {udp.Get()}), Verdict::kViolation);
  EXPECT_FALSE(Spawned());
}

TEST_F(ForgedListener, GarbageAndOversizedFramesAreViolations) {
  const std::vector<std::string> frames = {
      std::string("\xff\xff\xff", 3),                  // not protobuf
      std::string(wire::kMaxRequest + 1, '\x0a'),      // over the cap
      std::string("\x0a\x05\x08\x01", 4),              // truncated submessage
      std::string("\x2a\x00", 2),                      // unknown body (field 5)
      std::string("\x08\x06\x12\x03" "abc", 7),        // a Log record on the control channel
  };
  for (const std::string& bytes : frames) {
    Hello();
    ASSERT_EQ(send(peer_.Get(), bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    EXPECT_EQ(monitor_->OnControlReadable(), Verdict::kViolation) << bytes.size();
    EXPECT_TRUE(Logged("protocol violation")) << bytes.size();
    g_log.clear();
    Reattach();
  }
  EXPECT_FALSE(Spawned());
}

TEST_F(ForgedListener, ReadableSpawnsWaitServiceWithMonitorSocket) {
  Hello();
  wire::ToMonitor m;
  m.mutable_readable()->set_service(1);
  m.mutable_readable()->set_generation(config_.generation());
  Send(m);
  EXPECT_EQ(monitor_->OnControlReadable(), Verdict::kOk);
  auto r = Reply();
  ASSERT_TRUE(r && r->has_spawned());
  // Wait mode: max-child 1, so asking again while it runs is refused.
  Send(m);
  EXPECT_EQ(monitor_->OnControlReadable(), Verdict::kRefused);
}

// -R in the monitor: however often a (compromised) listener asks, no more
// than invocations_per_min children of one service start in a minute.
TEST_F(ForgedListener, SpawnsPastTheInvocationRateAreRefused) {
  monitor_.reset();  // its sockets close first: the new monitor binds the same ports
  Options o;
  o.config = conf_;
  o.invocations_per_min = 2;
  monitor_ = std::make_unique<Monitor>(o);
  ASSERT_TRUE(monitor_->Load());
  Reattach();
  Hello();
  for (int i = 1; i <= 4; ++i) {
    UniqueFd client;
    UniqueFd conn = Accepted(2, other_port_, client);
    ASSERT_TRUE(conn.Valid());
    Verdict v = SendSpawn(2, config_.generation(), {conn.Get()});
    auto r = Reply();
    ASSERT_TRUE(r.has_value()) << "spawn " << i;
    if (i <= 2) {
      EXPECT_EQ(v, Verdict::kOk) << "spawn " << i;
      EXPECT_TRUE(r->has_spawned()) << "spawn " << i;
    } else {
      EXPECT_EQ(v, Verdict::kRefused) << "spawn " << i;
      ASSERT_TRUE(r->has_refused()) << "spawn " << i;
      EXPECT_EQ(r->refused().reason(), "invocation rate");
    }
  }
  EXPECT_EQ(monitor_->child_count(), 2u);
  EXPECT_TRUE(monitor_->running());  // a refusal, not a violation
  // The rate is per service: another one still starts.
  UniqueFd client;
  UniqueFd conn = Accepted(0, tcp_port_, client);
  EXPECT_EQ(SendSpawn(0, config_.generation(), {conn.Get()}), Verdict::kOk);
  auto r = Reply();
  ASSERT_TRUE(r && r->has_spawned());
}

}  // namespace
