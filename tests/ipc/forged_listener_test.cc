// A forged listener: the test takes the listener's place on the control
// channel of a real Monitor (real config, real bound sockets, real fork) and
// sends everything a compromised listener could. Each bad request must end
// in a refusal or a violation, never a spawn; each is logged; the monitor
// leaks no fd and serves a fresh listener afterwards.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <net/if.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <span>
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

using Clock = std::chrono::steady_clock;

// Every log line the monitor writes, so tests can require the reason.
std::vector<std::string> g_log;
void Capture(int, std::string_view text) { g_log.emplace_back(text); }
bool Logged(const std::string& needle) {
  for (const auto& l : g_log)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}
size_t CountLogged(const std::string& needle) {
  size_t n = 0;
  for (const auto& l : g_log) n += l.find(needle) != std::string::npos ? 1 : 0;
  return n;
}

// Open fds of this process, which is also the monitor's (plus a constant:
// ".", ".." and the directory's own fd).
size_t OpenFds() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

uint16_t FreePort(int type, int family = AF_INET) {
  UniqueFd s(socket(family, type, 0));
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (family == AF_INET6) {
    auto& a = reinterpret_cast<sockaddr_in6&>(ss);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    len = sizeof a;
  } else {
    auto& a = reinterpret_cast<sockaddr_in&>(ss);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof a;
  }
  EXPECT_EQ(bind(s.Get(), reinterpret_cast<sockaddr*>(&ss), len), 0);
  len = sizeof ss;
  EXPECT_EQ(getsockname(s.Get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
  return ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(ss).sin6_port
                                  : reinterpret_cast<sockaddr_in&>(ss).sin_port);
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

UniqueFd Connect6(uint16_t port, const in6_addr& addr = in6addr_loopback) {
  UniqueFd s(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  a.sin6_addr = addr;
  EXPECT_EQ(connect(s.Get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return s;
}

UniqueFd ConnectUnix(const std::string& path, int type) {
  UniqueFd s(socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  (void)snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  EXPECT_EQ(connect(s.Get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << path;
  return s;
}

// Whether the peer of `fd` sees end of file within a second: every other
// copy of the other end (the monitor's included) is closed.
bool SeesEof(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 1000) != 1) return false;
  char c;
  return recv(fd, &c, 1, MSG_DONTWAIT) == 0 || read(fd, &c, 1) == 0;
}

// The bytes of ToMonitor field 4 holding one string (ReadLists{paths}),
// spelled out so the test builds with or without that message in the schema.
std::string Field4Bytes(const std::string& path) {
  std::string inner{'\x0a', static_cast<char>(path.size())};
  inner += path;
  std::string outer{'\x22', static_cast<char>(inner.size())};
  return outer + inner;
}

// A Spawn (or a Readable) for service `id` with the fds `fds` returns, the
// monitor must call a violation `why`; `what` names the case.
struct RequestCase {
  bool spawn;
  uint32_t id;
  std::function<std::vector<int>()> fds;  // the listener's sockets change with each Hello
  const char* why;
  const char* what;
};

class ForgedListener : public testing::Test {
 protected:
  void SetUp() override {
    g_log.clear();
    SetLogSink(Capture);
    SetLogDebug(true);  // refusals are logged at LOG_DEBUG
    tcp_port_ = FreePort(SOCK_STREAM);
    other_port_ = FreePort(SOCK_STREAM);
    udp_port_ = FreePort(SOCK_DGRAM);
    marker_ = "/tmp/inetd-forged-" + std::to_string(getpid());
    unlink(marker_.c_str());
    conf_ = marker_ + ".conf";
    std::ofstream(conf_) << BaseConf();
    Options o;
    o.config = conf_;
    monitor_ = std::make_unique<Monitor>(o);
    ASSERT_TRUE(monitor_->Load());
    ASSERT_EQ(monitor_->services().size(), 3u);
    Reattach();
  }
  void TearDown() override {
    // Children a test started and did not stop: SIGKILL them while they are
    // still unreaped (their pids cannot have been reused).
    for (pid_t pid : kill_) kill(pid, SIGKILL);
    // Reap whatever a (wrongly) spawned child left, bounded.
    for (int i = 0; i < 100 && monitor_->child_count() > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      monitor_->Reap();
    }
    EXPECT_EQ(monitor_->child_count(), 0u);
    monitor_.reset();
    SetLogDebug(false);
    unlink(conf_.c_str());
    unlink(marker_.c_str());
    for (const std::string& p : unlink_) unlink(p.c_str());
  }

  std::string BaseConf() const {
    std::ostringstream c;
    c << "127.0.0.1:\n"
      << tcp_port_ << " stream tcp nowait/1 nobody /bin/sh sh -c 'touch " << marker_
      << "; sleep 1'\n"
      << udp_port_ << " dgram udp wait nobody /bin/sh sh -c 'touch " << marker_ << "'\n"
      << other_port_ << " stream tcp nowait nobody /bin/true true\n";
    return c.str();
  }

  // A new monitor on the base table plus `extra` entries, with options `o`.
  void Restart(const std::string& extra, Options o = {}) {
    monitor_.reset();  // its sockets close first: the new monitor binds the same ports
    std::ofstream(conf_) << BaseConf() << extra;
    o.config = conf_;
    monitor_ = std::make_unique<Monitor>(o);
    ASSERT_TRUE(monitor_->Load());
    Reattach();
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
    size_t with_socket = 0;
    for (const Service& s : monitor_->services()) with_socket += s.conf.tcpmux ? 0 : 1;
    ASSERT_EQ(f->fds.size(), with_socket);
    config_ = reply.config();
    sockets_ = std::move(f->fds);
  }

  // After a violation: a new listener, as the main loop would start.
  void Fresh() {
    Reattach();
    Hello();
  }

  void Send(const wire::ToMonitor& m, std::vector<int> fds = {}) {
    ASSERT_TRUE(wire::SendFrame(peer_.Get(), m, fds).has_value());
  }

  // Any bytes with any fds, past SendFrame's own checks.
  void SendRaw(const std::string& bytes, const std::vector<int>& fds = {}) {
    iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    std::vector<char> control;
    if (!fds.empty()) {
      control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
      mh.msg_control = control.data();
      mh.msg_controllen = control.size();
      cmsghdr* c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ASSERT_EQ(sendmsg(peer_.Get(), &mh, MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()))
        << strerror(errno);
  }

  // A stand-in listener process (it only sleeps, 30 s at most), attached
  // to the monitor, past Hello.
  pid_t AttachSleepingListener() {
    const pid_t pid = fork();
    if (pid == 0) {
      for (int i = 0; i < 300; ++i) usleep(100 * 1000);
      _exit(0);
    }
    EXPECT_GE(pid, 0);
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    peer_.Reset(sv[1]);
    monitor_->Attach(UniqueFd(sv[0]), pid);
    Hello();
    g_log.clear();
    return pid;
  }
  // The monitor killed it with SIGKILL and reaped it; else it is ended here.
  void ExpectKilledAndReaped(pid_t pid) {
    const std::string death = "listener [" + std::to_string(pid) + "] killed by signal 9";
    for (int i = 0; i < 200 && !Logged(death); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      monitor_->Reap();
    }
    EXPECT_TRUE(Logged(death));
    if (!Logged(death)) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    EXPECT_EQ(monitor_->child_count(), 0u);
  }

  static std::string SpawnBytes(uint32_t id, uint64_t gen) {
    wire::ToMonitor m;
    m.mutable_spawn()->set_service(id);
    m.mutable_spawn()->set_generation(gen);
    return m.SerializeAsString();
  }
  static std::string ReadableBytes(uint32_t id, uint64_t gen) {
    wire::ToMonitor m;
    m.mutable_readable()->set_service(id);
    m.mutable_readable()->set_generation(gen);
    return m.SerializeAsString();
  }

  Verdict SendSpawn(uint32_t id, uint64_t gen, const std::vector<int>& fds) {
    wire::ToMonitor m;
    m.mutable_spawn()->set_service(id);
    m.mutable_spawn()->set_generation(gen);
    Send(m, fds);
    return monitor_->OnControlReadable();
  }

  Verdict SendReadable(uint32_t id, uint64_t gen, const std::vector<int>& fds = {}) {
    SendRaw(ReadableBytes(id, gen), fds);
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

  // Answers still queued (a Config after a reload, Hosts with -w), bounded.
  void Drain(int max = 16) {
    for (int i = 0; i < max && Reply(); ++i) {
    }
  }

  // The listener's copy of service `id`'s listening socket (tcpmux entries
  // have none, so ids and Config's fds need not line up).
  int Sock(uint32_t id) {
    size_t k = 0;
    for (uint32_t i = 0; i < id; ++i) k += monitor_->services()[i].conf.tcpmux ? 0 : 1;
    return k < sockets_.size() ? sockets_[k].Get() : -1;
  }

  // The id of the entry whose service field is `name` (a port, a path or a
  // tcpmux name) in the monitor's current table.
  uint32_t Id(const std::string& name) {
    for (uint32_t i = 0; i < monitor_->services().size(); ++i)
      if (monitor_->services()[i].conf.name == name) return i;
    ADD_FAILURE() << "no service " << name;
    return 9999;
  }

  // An accepted connection on service `id`, as the real listener would make.
  UniqueFd Accepted(uint32_t id, uint16_t port, UniqueFd& client) {
    client = Connect(port);
    return UniqueFd(accept4(Sock(id), nullptr, nullptr, SOCK_CLOEXEC));
  }
  UniqueFd AcceptedOn(int listening, UniqueFd& client, UniqueFd connected) {
    client = std::move(connected);
    return UniqueFd(accept4(listening, nullptr, nullptr, SOCK_CLOEXEC));
  }

  bool Spawned() { return access(marker_.c_str(), F_OK) == 0 || monitor_->child_count() > 0; }

  // A violation: the verdict, the reason in the log, the listener dropped.
  void ExpectViolation(Verdict v, const std::string& why, const std::string& what) {
    EXPECT_EQ(v, Verdict::kViolation) << what;
    EXPECT_TRUE(Logged("listener protocol violation: " + why)) << what << ": wanted " << why;
    EXPECT_FALSE(monitor_->running()) << what;
  }

  // Each case sent as raw bytes, each a violation; a fresh listener after each.
  void ExpectViolations(std::span<const RequestCase> cases, uint64_t gen) {
    for (const RequestCase& c : cases) {
      g_log.clear();
      SendRaw(c.spawn ? SpawnBytes(c.id, gen) : ReadableBytes(c.id, gen), c.fds());
      ExpectViolation(monitor_->OnControlReadable(), c.why, c.what);
      Fresh();
    }
  }

  // A refusal: the verdict, the Refused answer with its reason, the log.
  void ExpectRefused(Verdict v, const std::string& reason, const std::string& what) {
    EXPECT_EQ(v, Verdict::kRefused) << what;
    auto r = Reply();
    ASSERT_TRUE(r && r->has_refused()) << what;
    EXPECT_EQ(r->refused().reason(), reason) << what;
    EXPECT_TRUE(Logged(": " + reason)) << what;
    EXPECT_TRUE(monitor_->running()) << what;
  }

  // The monitor still serves: a new listener's valid request starts a child.
  void ExpectStillServes() {
    Fresh();
    UniqueFd client;
    UniqueFd conn = Accepted(2, other_port_, client);
    ASSERT_TRUE(conn.Valid());
    EXPECT_EQ(SendSpawn(2, config_.generation(), {conn.Get()}), Verdict::kOk);
    auto r = Reply();
    EXPECT_TRUE(r && r->has_spawned());
  }

  std::unique_ptr<Monitor> monitor_;
  UniqueFd peer_;
  wire::Config config_;
  std::vector<UniqueFd> sockets_;
  uint16_t tcp_port_, other_port_, udp_port_;
  std::string marker_, conf_;
  std::vector<pid_t> kill_;           // children to SIGKILL at the end
  std::vector<std::string> unlink_;   // files to remove at the end
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


// ---- Another service's fds ----

TEST_F(ForgedListener, AnotherServicesFdsAreViolations) {
  Hello();
  UniqueFd client0, client2;
  UniqueFd conn0 = Accepted(0, tcp_port_, client0);
  UniqueFd conn2 = Accepted(2, other_port_, client2);
  ASSERT_TRUE(conn0.Valid() && conn2.Valid());
  struct Case {
    uint32_t id;
    std::function<int()> fd;  // the listener's sockets change with each Hello
    const char* why;
    const char* what;
  };
  const Case cases[] = {
      {0, [&] { return conn2.Get(); }, "socket not accepted on this service's port",
       "a connection accepted on service 2, for service 0"},
      {2, [&] { return conn0.Get(); }, "socket not accepted on this service's port",
       "a connection accepted on service 0, for service 2"},
      {0, [&] { return Sock(2); }, "a listening socket, not a connection",
       "service 2's listening socket, for service 0"},
      {2, [&] { return Sock(0); }, "a listening socket, not a connection",
       "service 0's listening socket, for service 2"},
      {0, [&] { return Sock(1); }, "socket of the wrong type",
       "the wait service's UDP socket, for service 0"},
      {0, [&] { return client0.Get(); }, "socket not accepted on this service's port",
       "the client's end of a connection to service 0"},
  };
  const size_t fds_before = OpenFds();
  for (const Case& c : cases) {
    g_log.clear();
    ExpectViolation(SendSpawn(c.id, config_.generation(), {c.fd()}), c.why, c.what);
    EXPECT_FALSE(Reply().has_value()) << c.what;  // no answer, the channel is closed
    Fresh();
  }
  EXPECT_FALSE(Spawned());
  EXPECT_EQ(OpenFds(), fds_before);
  ExpectStillServes();
}

// ---- Things that are not sockets at all ----

TEST_F(ForgedListener, NonSocketFdsAreViolations) {
  Hello();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  UniqueFd pipe_r(p[0]), pipe_w(p[1]);
  sigset_t none;
  sigemptyset(&none);
  const std::pair<UniqueFd, const char*> fds[] = {
      {UniqueFd(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)), "a directory"},
      {UniqueFd(dup(pipe_r.Get())), "a pipe's read end"},
      {UniqueFd(dup(pipe_w.Get())), "a pipe's write end"},
      {UniqueFd(open(conf_.c_str(), O_RDONLY | O_CLOEXEC)), "a regular file"},
      {UniqueFd(open(conf_.c_str(), O_PATH | O_CLOEXEC)), "an O_PATH fd of a file"},
      {UniqueFd(open("/dev/null", O_RDWR | O_CLOEXEC)), "a character device"},
      {UniqueFd(eventfd(0, EFD_CLOEXEC)), "an eventfd"},
      {UniqueFd(epoll_create1(EPOLL_CLOEXEC)), "an epoll fd"},
      {UniqueFd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)), "a timerfd"},
      {UniqueFd(signalfd(-1, &none, SFD_CLOEXEC)), "a signalfd"},
      {UniqueFd(inotify_init1(IN_CLOEXEC)), "an inotify fd"},
      {UniqueFd(memfd_create("forged", MFD_CLOEXEC)), "a memfd"},
  };
  const size_t fds_before = OpenFds();
  for (const auto& [fd, what] : fds) {
    ASSERT_TRUE(fd.Valid()) << what;
    g_log.clear();
    ExpectViolation(SendSpawn(0, config_.generation(), {fd.Get()}), "fd is not a socket", what);
    Fresh();
  }
  EXPECT_FALSE(Spawned());
  EXPECT_EQ(OpenFds(), fds_before);
  ExpectStillServes();
}

// ---- Sockets, but not a connection accepted on this service ----

TEST_F(ForgedListener, SocketsThatAreNotTheServicesConnectionAreViolations) {
  Hello();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd stream_pair(sv[0]), stream_pair_other(sv[1]);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd seq_pair(sv[0]), seq_pair_other(sv[1]);
  UniqueFd tcp6(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  UniqueFd netlink(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE));
  UniqueFd udp = Connect(udp_port_, SOCK_DGRAM);  // connected, on the right port
  UniqueFd unbound(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  UniqueFd own_listen(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in lo{};
  lo.sin_family = AF_INET;
  lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(own_listen.Get(), reinterpret_cast<sockaddr*>(&lo), sizeof lo), 0);
  ASSERT_EQ(listen(own_listen.Get(), 1), 0);
  // Accepted on the right port, then reset by the client: no peer any more.
  UniqueFd reset_client;
  UniqueFd reset_conn = Accepted(0, tcp_port_, reset_client);
  linger hard{1, 0};
  ASSERT_EQ(setsockopt(reset_client.Get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
  reset_client.Reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  struct Case {
    int fd;
    const char* why;
    const char* what;
  };
  std::vector<Case> cases = {
      {stream_pair.Get(), "socket of the wrong family", "a unix stream socketpair end"},
      {seq_pair.Get(), "socket of the wrong family", "a unix seqpacket socketpair end"},
      {tcp6.Get(), "socket of the wrong family", "an IPv6 TCP socket"},
      {netlink.Get(), "socket of the wrong family", "a netlink socket"},
      {udp.Get(), "socket of the wrong type", "a UDP socket connected to a service port"},
      {unbound.Get(), "socket not accepted on this service's port", "an unbound TCP socket"},
      {own_listen.Get(), "a listening socket, not a connection", "a listening socket elsewhere"},
      {reset_conn.Get(), "socket is not connected", "a connection reset by its peer"},
  };
  // The wrong protocol of the right family and type: MPTCP (or SCTP), when
  // the kernel has one.
  UniqueFd other_proto(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 262 /* IPPROTO_MPTCP */));
  if (!other_proto.Valid()) other_proto.Reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_SCTP));
  if (other_proto.Valid())
    cases.push_back({other_proto.Get(), "socket of the wrong protocol", "an MPTCP/SCTP stream socket"});
  else
    (void)std::fprintf(stderr, "no MPTCP or SCTP: the wrong-protocol case is skipped\n");
  const size_t fds_before = OpenFds();
  for (const Case& c : cases) {
    ASSERT_GE(c.fd, 0) << c.what;
    g_log.clear();
    ExpectViolation(SendSpawn(0, config_.generation(), {c.fd}), c.why, c.what);
    Fresh();
  }
  // The listener's own end of its control channel, sent over itself.
  g_log.clear();
  ExpectViolation(SendSpawn(0, config_.generation(), {peer_.Get()}), "socket of the wrong family",
                  "the control channel itself");
  Fresh();
  EXPECT_FALSE(Spawned());
  EXPECT_EQ(OpenFds(), fds_before);
  ExpectStillServes();
}

// Unix services: the path is the service's identity.
TEST_F(ForgedListener, UnixServicesTakeOnlyConnectionsOnTheirPath) {
  const std::string a = marker_ + "-a.sock", b = marker_ + "-b.sock", c = marker_ + "-c.sock";
  unlink_ = {a, b, c};
  Restart(a + " stream unix nowait nobody /bin/true true\n" +     // 3
          b + " seqpacket unix nowait nobody /bin/true true\n" +  // 4
          c + " stream unix nowait nobody /bin/true true\n");     // 5
  ASSERT_EQ(monitor_->services().size(), 6u);
  Hello();
  const uint32_t ida = Id(a), idb = Id(b), idc = Id(c);
  UniqueFd client_a, client_b, client_c;
  UniqueFd conn_a = AcceptedOn(Sock(ida), client_a, ConnectUnix(a, SOCK_STREAM));
  UniqueFd conn_b = AcceptedOn(Sock(idb), client_b, ConnectUnix(b, SOCK_SEQPACKET));
  UniqueFd conn_c = AcceptedOn(Sock(idc), client_c, ConnectUnix(c, SOCK_STREAM));
  ASSERT_TRUE(conn_a.Valid() && conn_b.Valid() && conn_c.Valid());
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd pair(sv[0]), pair_other(sv[1]);
  UniqueFd path_b(open(b.c_str(), O_PATH | O_CLOEXEC));  // fstat says socket; no socket calls work
  UniqueFd tcp_client;
  UniqueFd tcp_conn = Accepted(2, other_port_, tcp_client);
  struct Case {
    uint32_t id;
    std::function<int()> fd;
    const char* why;
    const char* what;
  };
  const Case cases[] = {
      {idb, [&] { return conn_a.Get(); }, "socket of the wrong type",
       "a stream connection for a seqpacket service"},
      {ida, [&] { return conn_c.Get(); }, "socket not accepted on this service's port",
       "a connection accepted on another path"},
      {idb, [&] { return pair.Get(); }, "socket not accepted on this service's port",
       "an unnamed seqpacket socketpair end"},
      {idb, [&] { return peer_.Get(); }, "socket not accepted on this service's port",
       "the control channel itself"},
      {idb, [&] { return client_b.Get(); }, "socket not accepted on this service's port",
       "the client's end of a connection to the service"},
      {idb, [&] { return Sock(idb); }, "a listening socket, not a connection",
       "the service's own listening socket"},
      {idb, [&] { return path_b.Get(); }, "socket of the wrong family",
       "an O_PATH fd of the service's socket file"},
      {idb, [&] { return tcp_conn.Get(); }, "socket of the wrong family",
       "a TCP connection for a unix service"},
  };
  ASSERT_TRUE(path_b.Valid());
  const size_t fds_before = OpenFds();
  for (const Case& k : cases) {
    g_log.clear();
    ExpectViolation(SendSpawn(k.id, config_.generation(), {k.fd()}), k.why, k.what);
    Fresh();
  }
  EXPECT_FALSE(Spawned());
  EXPECT_EQ(OpenFds(), fds_before);
  // The right connections start their services.
  EXPECT_EQ(SendSpawn(idb, config_.generation(), {conn_b.Get()}), Verdict::kOk);
  auto r = Reply();
  EXPECT_TRUE(r && r->has_spawned());
  EXPECT_EQ(SendSpawn(ida, config_.generation(), {conn_a.Get()}), Verdict::kOk);
  r = Reply();
  EXPECT_TRUE(r && r->has_spawned());
  EXPECT_EQ(monitor_->child_count(), 2u);
}

// IPv6 and v4-mapped services: the address as well as the port must match.
TEST_F(ForgedListener, Ipv6ServicesCheckAddressAndPort) {
  {
    UniqueFd probe(socket(AF_INET6, SOCK_STREAM, 0));
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    if (!probe.Valid() || bind(probe.Get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      GTEST_SKIP() << "no IPv6 loopback";
  }
  const uint16_t p6 = FreePort(SOCK_STREAM, AF_INET6), p46 = FreePort(SOCK_STREAM);
  Restart("[::1]:" + std::to_string(p6) + " stream tcp6 nowait nobody /bin/true true\n" +
          "[::ffff:127.0.0.1]:" + std::to_string(p46) +
          " stream tcp46 nowait nobody /bin/true true\n");
  ASSERT_EQ(monitor_->services().size(), 5u);
  Hello();
  const uint32_t id6 = 3, id46 = 4;
  UniqueFd client6, client46, client4;
  UniqueFd conn6 = AcceptedOn(Sock(id6), client6, Connect6(p6));
  UniqueFd conn46 = AcceptedOn(Sock(id46), client46, Connect(p46));  // arrives v4-mapped
  UniqueFd conn4 = Accepted(2, other_port_, client4);
  ASSERT_TRUE(conn6.Valid() && conn46.Valid() && conn4.Valid());
  // Same port as the tcp46 service, on ::1: another address.
  UniqueFd lst(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int on = 1;
  setsockopt(lst.Get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  setsockopt(lst.Get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(p46);
  a.sin6_addr = in6addr_loopback;
  ASSERT_EQ(bind(lst.Get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  ASSERT_EQ(listen(lst.Get(), 1), 0);
  UniqueFd client_other;
  UniqueFd conn_other = AcceptedOn(lst.Get(), client_other, Connect6(p46));
  ASSERT_TRUE(conn_other.Valid());
  struct Case {
    uint32_t id;
    int fd;
    const char* why;
    const char* what;
  };
  const Case cases[] = {
      {id6, conn4.Get(), "socket of the wrong family", "an IPv4 connection for a tcp6 service"},
      {id46, conn6.Get(), "socket not accepted on this service's port",
       "a connection on another IPv6 port"},
      {id46, conn_other.Get(), "socket not accepted on this service's port",
       "a connection on the same port, another IPv6 address"},
  };
  for (const Case& c : cases) {
    g_log.clear();
    ExpectViolation(SendSpawn(c.id, config_.generation(), {c.fd}), c.why, c.what);
    Fresh();
  }
  EXPECT_FALSE(Spawned());
  EXPECT_EQ(SendSpawn(id6, config_.generation(), {conn6.Get()}), Verdict::kOk);
  auto r = Reply();
  EXPECT_TRUE(r && r->has_spawned());
  EXPECT_EQ(SendSpawn(id46, config_.generation(), {conn46.Get()}), Verdict::kOk);
  r = Reply();
  EXPECT_TRUE(r && r->has_spawned());
}

// Services bound to the wildcard address, in a network namespace of our own
// so that nothing is exposed: any local address of the right port is theirs.
TEST_F(ForgedListener, WildcardServicesTakeAnyLocalAddress) {
  UniqueFd home(open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home.Valid() || unshare(CLONE_NEWNET) != 0) GTEST_SKIP() << "no network namespaces";
  struct Back {
    int fd;
    ~Back() { EXPECT_EQ(setns(fd, CLONE_NEWNET), 0); }
  } back{home.Get()};
  {  // loopback up
    UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    (void)snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    ASSERT_EQ(ioctl(s.Get(), SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ASSERT_EQ(ioctl(s.Get(), SIOCSIFFLAGS, &ifr), 0);
  }
  const uint16_t p4 = FreePort(SOCK_STREAM), p46 = FreePort(SOCK_STREAM, AF_INET6);
  Restart("*:" + std::to_string(p4) + " stream tcp4 nowait nobody /bin/true true\n" +
          "*:" + std::to_string(p46) + " stream tcp46 nowait nobody /bin/true true\n");
  ASSERT_EQ(monitor_->services().size(), 5u);
  Hello();
  UniqueFd c4, c46, c6;
  UniqueFd conn4 = AcceptedOn(Sock(3), c4, Connect(p4));
  UniqueFd conn46 = AcceptedOn(Sock(4), c46, Connect(p46));
  UniqueFd conn6 = AcceptedOn(Sock(4), c6, Connect6(p46));
  ASSERT_TRUE(conn4.Valid() && conn46.Valid() && conn6.Valid());
  // Another port is still another service.
  ExpectViolation(SendSpawn(3, config_.generation(), {conn46.Get()}), "socket of the wrong family",
                  "a tcp46 connection for a tcp4 service");
  Fresh();
  for (int fd : {conn4.Get(), conn46.Get(), conn6.Get()}) {
    uint32_t id = fd == conn4.Get() ? 3 : 4;
    EXPECT_EQ(SendSpawn(id, config_.generation(), {fd}), Verdict::kOk) << id;
    auto r = Reply();
    EXPECT_TRUE(r && r->has_spawned()) << id;
  }
  EXPECT_EQ(monitor_->child_count(), 3u);
}

// ---- Replays ----

// The monitor cannot tell a connection it already served (the listener kept
// a copy, or a dup): it spawns again, but never past the service's limit.
TEST_F(ForgedListener, ReplayedConnectionIsBoundByMaxChild) {
  Hello();
  UniqueFd client;
  UniqueFd conn = Accepted(0, tcp_port_, client);
  ASSERT_TRUE(conn.Valid());
  EXPECT_EQ(SendSpawn(0, config_.generation(), {conn.Get()}), Verdict::kOk);
  auto r = Reply();
  ASSERT_TRUE(r && r->has_spawned());
  UniqueFd copy(dup(conn.Get()));
  for (int i = 0; i < 5; ++i) {
    g_log.clear();
    ExpectRefused(SendSpawn(0, config_.generation(), {i % 2 ? conn.Get() : copy.Get()}),
                  "max-child reached", "replay " + std::to_string(i));
  }
  EXPECT_EQ(monitor_->child_count(), 1u);
  EXPECT_EQ(monitor_->services()[0].children, 1);
}

// The same record, byte for byte, sent again.
TEST_F(ForgedListener, ReplayedMessageBytesAreCheckedAgain) {
  Hello();
  const std::string hello = [] {
    wire::ToMonitor m;
    m.mutable_hello()->set_version(kProtocolVersion);
    return m.SerializeAsString();
  }();
  const std::string spawn0 = SpawnBytes(0, config_.generation());
  const std::string readable1 = ReadableBytes(1, config_.generation());
  UniqueFd client;
  UniqueFd conn = Accepted(0, tcp_port_, client);
  // A Spawn replayed with its connection: max-child 1 holds.
  SendRaw(spawn0, {conn.Get()});
  EXPECT_EQ(monitor_->OnControlReadable(), Verdict::kOk);
  auto r = Reply();
  ASSERT_TRUE(r && r->has_spawned());
  for (int i = 0; i < 3; ++i) {
    SendRaw(spawn0, {conn.Get()});
    ExpectRefused(monitor_->OnControlReadable(), "max-child reached", "spawn replay");
  }
  // A Readable replayed: the wait service's one child holds.
  SendRaw(readable1);
  EXPECT_EQ(monitor_->OnControlReadable(), Verdict::kOk);
  r = Reply();
  ASSERT_TRUE(r && r->has_spawned());
  for (int i = 0; i < 3; ++i) {
    SendRaw(readable1);
    ExpectRefused(monitor_->OnControlReadable(), "max-child reached", "readable replay");
  }
  EXPECT_EQ(monitor_->child_count(), 2u);
  // The Spawn replayed without its fd.
  g_log.clear();
  SendRaw(spawn0);
  ExpectViolation(monitor_->OnControlReadable(), "wrong number of fds for the request",
                  "spawn replayed without its fd");
  // Hello replayed to a running monitor.
  Fresh();
  g_log.clear();
  SendRaw(hello);
  ExpectViolation(monitor_->OnControlReadable(), "request not allowed in this state",
                  "hello replayed");
  // A new listener's channel, before its Hello: an old Spawn is out of state.
  Reattach();
  g_log.clear();
  SendRaw(spawn0, {conn.Get()});
  ExpectViolation(monitor_->OnControlReadable(), "request not allowed in this state",
                  "spawn replayed to a new listener before Hello");
  EXPECT_EQ(monitor_->child_count(), 2u);
}

// Requests recorded before reloads: a kept socket is served by its service
// (not by whatever now has that index); a removed one is stale.
TEST_F(ForgedListener, ReplayAcrossReloadsFollowsTheServiceNotTheIndex) {
  Hello();
  const uint64_t gen1 = config_.generation();
  const std::string tcp_line =
      std::to_string(tcp_port_) + " stream tcp nowait/1 nobody /bin/sh sh -c 'touch " + marker_ +
      "; sleep 1'\n";
  const std::string udp_line = std::to_string(udp_port_) + " dgram udp wait nobody /bin/sh sh -c 'touch " +
                               marker_ + "'\n";
  const std::string other_line = std::to_string(other_port_) + " stream tcp nowait nobody /bin/true true\n";
  // Reordered: service 0 of generation 1 (tcp_port_) is now id 2.
  std::ofstream(conf_) << "127.0.0.1:\n" << other_line << udp_line << tcp_line;
  ASSERT_TRUE(monitor_->Load());
  Drain();  // the new Config
  ASSERT_EQ(monitor_->generation(), gen1 + 1);
  ASSERT_EQ(monitor_->services()[0].conf.name, std::to_string(other_port_));
  UniqueFd client_other, client_tcp;
  UniqueFd conn_other = Accepted(2, other_port_, client_other);  // Sock(): generation 1's order
  UniqueFd conn_tcp = Accepted(0, tcp_port_, client_tcp);
  ASSERT_TRUE(conn_other.Valid() && conn_tcp.Valid());
  // Generation 1's id 0 with a connection of today's id 0: not that service's.
  ExpectViolation(SendSpawn(0, gen1, {conn_other.Get()}), "socket not accepted on this service's port",
                  "old id, new index's connection");
  Fresh();
  const uint64_t gen2 = config_.generation();
  // Generation 1's id 0 with its own connection: served by that service.
  EXPECT_EQ(SendSpawn(0, gen1, {conn_tcp.Get()}), Verdict::kOk);
  auto r = Reply();
  ASSERT_TRUE(r && r->has_spawned());
  EXPECT_EQ(r->spawned().generation(), gen1);
  EXPECT_EQ(monitor_->services()[2].children, 1);
  EXPECT_EQ(monitor_->services()[0].children, 0);
  // Remove the /bin/true service: its requests of any generation are stale.
  std::ofstream(conf_) << "127.0.0.1:\n" << udp_line << tcp_line;
  ASSERT_TRUE(monitor_->Load());
  Drain();
  ASSERT_EQ(monitor_->services().size(), 2u);
  UniqueFd c2;
  UniqueFd conn2 = Accepted(0, other_port_, c2);  // the listener still holds the old socket
  for (uint64_t gen : {gen1, gen2}) {
    const uint32_t id = gen == gen1 ? 2 : 0;
    g_log.clear();
    ExpectRefused(SendSpawn(id, gen, {conn2.Get()}), "stale generation",
                  "removed service, generation " + std::to_string(gen));
  }
  // Generations that never were.
  for (uint64_t gen : {uint64_t{0}, monitor_->generation() + 1, ~uint64_t{0}}) {
    g_log.clear();
    ExpectRefused(SendSpawn(0, gen, {conn_tcp.Get()}), "stale generation",
                  "generation " + std::to_string(gen));
  }
  // An id past the end of the past table it names.
  g_log.clear();
  ExpectRefused(SendSpawn(7, gen2, {conn_tcp.Get()}), "stale generation", "id past an old table");
  // Older than the kPastTables tables the monitor remembers: stale, even
  // for a service whose socket was kept all along.
  for (size_t i = 0; i <= kPastTables; ++i) {
    ASSERT_TRUE(monitor_->Load());
    Drain();
  }
  g_log.clear();
  ExpectRefused(SendSpawn(0, gen1, {conn_tcp.Get()}), "stale generation",
                "a generation older than the remembered tables");
  // Today's generation with an id past the end.
  ExpectViolation(SendSpawn(2, monitor_->generation(), {conn2.Get()}), "unknown service id",
                  "id past the new table");
  EXPECT_EQ(monitor_->child_count(), 1u);
}

// ---- Floods ----

// Thousands of valid Spawns: exactly max-child children per service (its
// own, or -c), every other request refused, the monitor running throughout.
TEST_F(ForgedListener, FloodPastMaxChildStartsExactlyTheLimit) {
  const uint16_t p5 = FreePort(SOCK_STREAM), pc = FreePort(SOCK_STREAM);
  Options o;
  o.max_child = 3;  // -c: for entries that set none
  o.invocations_per_min = 0;
  Restart(std::to_string(p5) + " stream tcp nowait/5 nobody /bin/sleep sleep 30\n" +  // 3
              std::to_string(pc) + " stream tcp nowait nobody /bin/sleep sleep 30\n",   // 4
          o);
  ASSERT_EQ(monitor_->services().size(), 5u);
  Hello();
  UniqueFd client5, clientc;
  UniqueFd conn5 = AcceptedOn(Sock(3), client5, Connect(p5));
  UniqueFd connc = AcceptedOn(Sock(4), clientc, Connect(pc));
  ASSERT_TRUE(conn5.Valid() && connc.Valid());
  constexpr int kRequests = 2000;
  std::map<uint32_t, int> spawned, refused;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  int sent = 0;
  for (; sent < 2 * kRequests && Clock::now() < deadline; ++sent) {
    const uint32_t id = sent % 2 ? 3 : 4;
    Verdict v = SendSpawn(id, config_.generation(), {id == 3 ? conn5.Get() : connc.Get()});
    auto r = Reply();
    ASSERT_TRUE(r.has_value()) << "request " << sent;
    if (r->has_spawned()) {
      EXPECT_EQ(v, Verdict::kOk);
      kill_.push_back(r->spawned().pid());
      ++spawned[id];
    } else {
      ASSERT_TRUE(r->has_refused()) << "request " << sent;
      EXPECT_EQ(v, Verdict::kRefused);
      EXPECT_EQ(r->refused().reason(), "max-child reached");
      ++refused[id];
    }
  }
  ASSERT_EQ(sent, 2 * kRequests) << "the flood did not finish in time";
  EXPECT_TRUE(monitor_->running());
  EXPECT_EQ(spawned[3], 5);
  EXPECT_EQ(spawned[4], 3);
  EXPECT_EQ(refused[3], kRequests - 5);
  EXPECT_EQ(refused[4], kRequests - 3);
  EXPECT_EQ(monitor_->child_count(), 8u);
  EXPECT_EQ(CountLogged("max-child reached"), static_cast<size_t>(2 * kRequests - 8));
  // Stop them; once reaped, the service starts again.
  for (pid_t pid : kill_) kill(pid, SIGKILL);
  kill_.clear();
  for (int i = 0; i < 200 && monitor_->child_count() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    monitor_->Reap();
    Drain();
  }
  EXPECT_EQ(monitor_->child_count(), 0u);
  EXPECT_EQ(SendSpawn(3, config_.generation(), {conn5.Get()}), Verdict::kOk);
  auto r = Reply();
  ASSERT_TRUE(r && r->has_spawned());
  kill_.push_back(r->spawned().pid());
}

// More Spawns than the 4096-children cap allows, on a service without a
// limit: exactly kMaxChildrenTotal children, then "too many children" for
// every service.
TEST_F(ForgedListener, FloodPastTheGlobalCapStartsExactlyTheCap) {
  const uint16_t port = FreePort(SOCK_STREAM);
  Options o;
  o.invocations_per_min = 0;  // -R would stop one service at 256 a minute
  Restart(std::to_string(port) + " stream tcp nowait root /bin/sleep sleep 60\n", o);
  ASSERT_EQ(monitor_->services().size(), 4u);
  Hello();
  UniqueFd client;
  UniqueFd conn = AcceptedOn(Sock(3), client, Connect(port));
  ASSERT_TRUE(conn.Valid());
  constexpr int kExtra = 500;
  int spawned = 0, refused = 0, sent = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(150);
  for (; sent < kMaxChildrenTotal + kExtra && Clock::now() < deadline; ++sent) {
    Verdict v = SendSpawn(3, config_.generation(), {conn.Get()});
    auto r = Reply();
    ASSERT_TRUE(r.has_value()) << "request " << sent;
    if (r->has_spawned()) {
      kill_.push_back(r->spawned().pid());
      ++spawned;
    } else {
      ASSERT_TRUE(r->has_refused()) << "request " << sent;
      ASSERT_EQ(r->refused().reason(), "too many children") << "request " << sent;
      EXPECT_EQ(v, Verdict::kRefused);
      ++refused;
    }
  }
  ASSERT_EQ(sent, kMaxChildrenTotal + kExtra) << "the flood did not finish in time";
  EXPECT_EQ(spawned, kMaxChildrenTotal);
  EXPECT_EQ(refused, kExtra);
  EXPECT_EQ(monitor_->child_count(), static_cast<size_t>(kMaxChildrenTotal));
  // The cap is for all services: another one is refused too.
  UniqueFd client2;
  UniqueFd conn2 = Accepted(2, other_port_, client2);
  g_log.clear();
  ExpectRefused(SendSpawn(2, config_.generation(), {conn2.Get()}), "too many children",
                "another service at the cap");
  ExpectRefused(SendReadable(1, config_.generation()), "too many children",
                "a wait service at the cap");
  EXPECT_EQ(monitor_->child_count(), static_cast<size_t>(kMaxChildrenTotal));
  // Stop them in batches, reading the Exited notices as a listener would
  // (thousands at once would overflow the channel: a violation).
  const auto reap_deadline = Clock::now() + std::chrono::seconds(60);
  while (!kill_.empty() && Clock::now() < reap_deadline) {
    const size_t batch = std::min<size_t>(kill_.size(), 64);
    const size_t left = monitor_->child_count() - batch;
    for (size_t i = 0; i < batch; ++i) kill(kill_[kill_.size() - 1 - i], SIGKILL);
    kill_.resize(kill_.size() - batch);
    while (monitor_->child_count() > left && Clock::now() < reap_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      monitor_->Reap();
      Drain(128);
    }
  }
  EXPECT_EQ(monitor_->child_count(), 0u);
  EXPECT_TRUE(monitor_->running());  // every Exited was read: no overflow
}

// ---- Half messages ----

TEST_F(ForgedListener, HalfMessagesAreViolationsAndTheirFdsAreClosed) {
  Hello();
  UniqueFd client;
  UniqueFd conn = Accepted(2, other_port_, client);
  ASSERT_TRUE(conn.Valid());
  const size_t fds_before = OpenFds();
  const std::string whole = SpawnBytes(2, config_.generation());
  ASSERT_GT(whole.size(), 3u);
  // Every strict prefix of a valid Spawn, with its connection.
  for (size_t n = 1; n < whole.size(); ++n) {
    g_log.clear();
    SendRaw(whole.substr(0, n), {conn.Get()});
    ExpectViolation(monitor_->OnControlReadable(), "undecodable request",
                    "a Spawn cut to " + std::to_string(n) + " bytes");
    Fresh();
  }
  struct Case {
    std::string bytes;
    const char* why;
    const char* what;
  };
  const Case cases[] = {
      {"", "request not allowed in this state", "fds and no payload at all"},
      {std::string(1, '\0'), "request not allowed in this state", "fds and an empty message"},
      {whole + "\xff", "undecodable request", "a Spawn and a stray byte"},
      {whole + "\x12", "undecodable request", "a Spawn and half a field"},
      {std::string("\x12\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 13), "undecodable request",
       "an over-long varint"},
      {std::string("\x12\x7f\x08\x02", 4), "undecodable request", "a length past the record"},
  };
  for (const Case& c : cases) {
    g_log.clear();
    SendRaw(c.bytes, {conn.Get()});
    ExpectViolation(monitor_->OnControlReadable(), c.why, c.what);
    Fresh();
  }
  EXPECT_FALSE(Spawned());
  EXPECT_EQ(OpenFds(), fds_before);
  // The monitor's copies are closed: with ours gone too, the client sees EOF.
  conn.Reset();
  EXPECT_TRUE(SeesEof(client.Get()));
  // A zero-length record without fds reads as the listener closing its end.
  g_log.clear();
  SendRaw("");
  EXPECT_EQ(monitor_->OnControlReadable(), Verdict::kViolation);
  EXPECT_TRUE(Logged("listener closed its channel"));
  EXPECT_FALSE(monitor_->running());
  // So does a listener that sends half its requests and goes.
  Fresh();
  peer_.Reset();
  EXPECT_EQ(monitor_->OnControlReadable(), Verdict::kViolation);
  EXPECT_FALSE(monitor_->running());
  EXPECT_FALSE(Spawned());
  ExpectStillServes();
}

// More fds than the request allows: refused by the framing, every one closed.
TEST_F(ForgedListener, ExtraFdsAreClosed) {
  Hello();
  const size_t fds_before = OpenFds();
  for (size_t n : {2, 3, 16, 64, 200, 253 /* SCM_MAX_FD */}) {
    UniqueFd client;
    UniqueFd conn = Accepted(2, other_port_, client);
    ASSERT_TRUE(conn.Valid());
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    UniqueFd r(p[0]), w(p[1]);
    std::vector<int> fds(n, w.Get());  // one valid connection, then n-1 extras
    fds[0] = conn.Get();
    g_log.clear();
    SendRaw(SpawnBytes(2, config_.generation()), fds);
    w.Reset();
    conn.Reset();
    ExpectViolation(monitor_->OnControlReadable(), "too many fds", std::to_string(n) + " fds");
    char c;
    EXPECT_EQ(read(r.Get(), &c, 1), 0) << n << " fds: a copy of the pipe is still open";
    EXPECT_TRUE(SeesEof(client.Get())) << n << " fds: a copy of the connection is still open";
    Fresh();
  }
  EXPECT_EQ(OpenFds(), fds_before);
  EXPECT_FALSE(Spawned());
  ExpectStillServes();
}

// fd exhaustion: frames full of fds, many times over the fd limit in all;
// then a monitor whose fd table is full when a request arrives.
TEST_F(ForgedListener, FdFloodsLeakNothing) {
  Hello();
  UniqueFd efd(eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(efd.Valid());
  const std::vector<int> many(253, efd.Get());
  const size_t fds_before = OpenFds();
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  // More fds in all than the process may hold at once.
  const size_t frames = std::min<size_t>(400, lim.rlim_cur / 253 + 8);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  size_t sent = 0;
  for (; sent < frames && Clock::now() < deadline; ++sent) {
    g_log.clear();
    SendRaw(sent % 2 ? SpawnBytes(2, config_.generation()) : std::string("\xff"), many);
    ExpectViolation(monitor_->OnControlReadable(), "too many fds", "frame " + std::to_string(sent));
    Fresh();
    if (HasFatalFailure() || monitor_->running() == false) break;
  }
  EXPECT_EQ(sent, frames);
  EXPECT_EQ(OpenFds(), fds_before);
  EXPECT_FALSE(Spawned());

  // The monitor's fd table full: the kernel cannot hand it the connection
  // and marks the record truncated; nothing starts without its fd.
  UniqueFd client;
  UniqueFd conn = Accepted(2, other_port_, client);
  ASSERT_TRUE(conn.Valid());
  SendRaw(SpawnBytes(2, config_.generation()), {conn.Get()});
  const int lowest_free = fcntl(0, F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(lowest_free, 0);
  close(lowest_free);
  rlimit tight = lim;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  g_log.clear();
  const Verdict v = monitor_->OnControlReadable();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  ExpectViolation(v, "truncated record", "a request to a monitor out of fds");
  EXPECT_FALSE(Spawned());
  ExpectStillServes();
}

// ---- Requests of the wrong kind for their service ----

TEST_F(ForgedListener, RequestKindsMustMatchEveryKindOfService) {
  const uint16_t pw = FreePort(SOCK_STREAM), pe = FreePort(SOCK_STREAM), pu = FreePort(SOCK_DGRAM);
  Restart(std::to_string(pw) + " stream tcp wait nobody /bin/sh sh -c 'touch " + marker_ + "'\n" +
          std::to_string(pe) + " stream tcp nowait root internal echo\n" +
          std::to_string(pu) + " dgram udp wait root internal echo\n");
  ASSERT_EQ(monitor_->services().size(), 6u);
  const uint32_t wait_stream = 3, echo_stream = 4, echo_dgram = 5;
  ASSERT_TRUE(monitor_->services()[echo_stream].conf.internal);
  ASSERT_TRUE(monitor_->services()[echo_dgram].conf.internal);
  Hello();
  const uint64_t gen = config_.generation();
  UniqueFd cw, ce;
  UniqueFd conn_w = AcceptedOn(Sock(wait_stream), cw, Connect(pw));  // the listener holds it too
  UniqueFd conn_e = AcceptedOn(Sock(echo_stream), ce, Connect(pe));
  ASSERT_TRUE(conn_w.Valid() && conn_e.Valid());
  UniqueFd client0;
  UniqueFd conn0 = Accepted(0, tcp_port_, client0);
  const RequestCase cases[] = {
      {true, wait_stream, [&] { return std::vector<int>{conn_w.Get()}; },
       "spawn request for a service that takes no connection",
       "Spawn, with a connection, for a wait stream service"},
      {true, wait_stream, [&] { return std::vector<int>{Sock(wait_stream)}; },
       "spawn request for a service that takes no connection",
       "Spawn, with its listening socket, for a wait stream service"},
      {true, echo_stream, [&] { return std::vector<int>{conn_e.Get()}; },
       "spawn request for a service that takes no connection", "Spawn for an internal service"},
      {false, echo_stream, [] { return std::vector<int>{}; },
       "readable report for a service that takes connections", "Readable for an internal stream service"},
      {false, echo_dgram, [] { return std::vector<int>{}; },
       "readable report for a service that takes connections", "Readable for an internal dgram service"},
      {false, 2, [] { return std::vector<int>{}; },
       "readable report for a service that takes connections", "Readable for a nowait stream service"},
      {false, 1, [&] { return std::vector<int>{conn0.Get()}; }, "wrong number of fds for the request",
       "Readable with an fd"},
      {false, 99, [] { return std::vector<int>{}; }, "unknown service id", "Readable for an unknown id"},
      {false, ~uint32_t{0}, [] { return std::vector<int>{}; }, "unknown service id",
       "Readable for id 2^32-1"},
      {true, ~uint32_t{0}, [&] { return std::vector<int>{conn0.Get()}; }, "unknown service id",
       "Spawn for id 2^32-1"},
  };
  ExpectViolations(cases, gen);
  // A Readable from before a reload is a race, not an attack.
  g_log.clear();
  ExpectRefused(SendReadable(1, gen + 1), "stale generation", "Readable, stale generation");
  // Out of state: Readable before Hello, Hello with an fd.
  Reattach();
  g_log.clear();
  ExpectViolation(SendReadable(1, gen), "request not allowed in this state", "Readable before Hello");
  Reattach();
  g_log.clear();
  wire::ToMonitor hello;
  hello.mutable_hello()->set_version(kProtocolVersion);
  Send(hello, {conn0.Get()});
  ExpectViolation(monitor_->OnControlReadable(), "wrong number of fds for the request",
                  "Hello with an fd");
  EXPECT_FALSE(Spawned());
}

// tcpmux/NAME services are reached only through the tcpmux built-in's socket.
TEST_F(ForgedListener, TcpmuxHandoffOnlyWithATcpmuxConnection) {
  const uint16_t pm = FreePort(SOCK_STREAM);
  Restart(std::to_string(pm) + " stream tcp nowait root internal tcpmux\n" +
          "tcpmux/forged stream tcp nowait nobody /bin/sh sh -c 'touch " + marker_ + "'\n");
  ASSERT_EQ(monitor_->services().size(), 5u);
  const uint32_t mux = 3, named = Id("forged");
  ASSERT_EQ(named, 4u);
  ASSERT_TRUE(monitor_->services()[named].conf.tcpmux);
  Hello();
  const uint64_t gen = config_.generation();
  UniqueFd cm, c2;
  UniqueFd conn_mux = AcceptedOn(Sock(mux), cm, Connect(pm));
  UniqueFd conn2 = Accepted(2, other_port_, c2);
  ASSERT_TRUE(conn_mux.Valid() && conn2.Valid());
  const RequestCase cases[] = {
      {true, named, [&] { return std::vector<int>{conn2.Get()}; },
       "tcpmux service without a tcpmux connection", "a tcpmux handoff of another service's connection"},
      {true, named, [&] { return std::vector<int>{Sock(mux)}; },
       "tcpmux service without a tcpmux connection", "a tcpmux handoff of the tcpmux listening socket"},
      {true, 2, [&] { return std::vector<int>{conn_mux.Get()}; },
       "socket not accepted on this service's port", "a tcpmux connection for a non-tcpmux service"},
      {true, mux, [&] { return std::vector<int>{conn_mux.Get()}; },
       "spawn request for a service that takes no connection", "Spawn for the tcpmux built-in"},
      {false, named, [] { return std::vector<int>{}; },
       "readable report for a service that takes connections", "Readable for a tcpmux service"},
  };
  ExpectViolations(cases, gen);
  EXPECT_FALSE(Spawned());
  // A handoff named in the table before a reload: a tcpmux entry has no
  // socket to keep, so it is stale rather than served.
  ASSERT_TRUE(monitor_->Load());
  Drain();
  g_log.clear();
  ExpectRefused(SendSpawn(named, gen, {conn_mux.Get()}), "stale generation",
                "a tcpmux handoff from before a reload");
  EXPECT_FALSE(Spawned());
  Fresh();
  // The real handoff.
  EXPECT_EQ(SendSpawn(named, config_.generation(), {conn_mux.Get()}), Verdict::kOk);
  auto r = Reply();
  EXPECT_TRUE(r && r->has_spawned());
  EXPECT_EQ(monitor_->services()[named].children, 1);
}

TEST_F(ForgedListener, TcpmuxHandoffWithoutTcpmuxBuiltinIsViolation) {
  Restart("tcpmux/forged stream tcp nowait nobody /bin/sh sh -c 'touch " + marker_ + "'\n");
  ASSERT_EQ(monitor_->services().size(), 4u);
  Hello();
  UniqueFd c2;
  UniqueFd conn2 = Accepted(2, other_port_, c2);
  ExpectViolation(SendSpawn(Id("forged"), config_.generation(), {conn2.Get()}),
                  "tcpmux service without a tcpmux connection", "no tcpmux built-in");
  EXPECT_FALSE(Spawned());
}

// ---- Messages of the other direction ----

// What the monitor sends, sent back. ToListener and ToMonitor share field
// numbers, so some decode as requests (Spawned as Spawn, Refused as
// Readable): each is then checked as that request, and fails.
TEST_F(ForgedListener, MonitorToListenerMessagesSentBackAreViolations) {
  Hello();
  const uint64_t gen = config_.generation();
  wire::ToListener config, spawned, refused, exited, status;
  *config.mutable_config() = config_;
  spawned.mutable_spawned()->set_service(2);
  spawned.mutable_spawned()->set_generation(gen);
  spawned.mutable_spawned()->set_pid(1);
  refused.mutable_refused()->set_service(0);
  refused.mutable_refused()->set_generation(gen);
  refused.mutable_refused()->set_reason("max-child reached");
  exited.mutable_exited()->set_service(1);
  exited.mutable_exited()->set_generation(gen);
  exited.mutable_exited()->set_pid(1);
  exited.mutable_exited()->set_status(0);
  status.mutable_status();
  struct Case {
    std::string bytes;
    bool with_sockets;
    // "" where the reason depends on what the request schema has at that
    // field number (4 and up are being added): any violation will do.
    const char* why;
    const char* what;
  };
  const Case cases[] = {
      {config.SerializeAsString(), false, "request not allowed in this state", "Config (reads as Hello)"},
      {config.SerializeAsString(), true, "too many fds", "Config with its sockets"},
      {spawned.SerializeAsString(), false, "wrong number of fds for the request",
       "Spawned (reads as Spawn)"},
      {refused.SerializeAsString(), false, "readable report for a service that takes connections",
       "Refused (reads as Readable)"},
      {exited.SerializeAsString(), false, "", "Exited"},
      {std::string("\x2a\x00", 2), false, "", "Status"},
      {std::string("\x32\x00", 2), false, "", "field 6 (Hosts)"},
  };
  ASSERT_EQ(status.SerializeAsString(), std::string("\x2a\x00", 2));
  for (const Case& c : cases) {
    g_log.clear();
    std::vector<int> fds;
    if (c.with_sockets)
      for (const UniqueFd& s : sockets_) fds.push_back(s.Get());
    SendRaw(c.bytes, fds);
    ExpectViolation(monitor_->OnControlReadable(), c.why, c.what);
    Fresh();
  }
  EXPECT_FALSE(Spawned());
}

// Field 4 of a request asks the monitor to read hosts_access list files
// (ReadLists, with -w/-W). A compromised listener must not get root to read
// any other file for it; without -w there is nothing to ask for.
TEST_F(ForgedListener, FileReadRequestsForUnnamedPathsAreViolations) {
  Hello();
  g_log.clear();
  SendRaw(Field4Bytes("/etc/shadow"));
  ExpectViolation(monitor_->OnControlReadable(), "", "a file read request without -w");
  EXPECT_FALSE(Reply().has_value());
  Options o;
  o.wrap_external = true;
  Restart("", o);
  for (const std::string path : {"/etc/shadow", "/root/.ssh/id_rsa", "etc/shadow", "",
                                 "/etc/hosts.allow/../shadow", "/proc/self/environ"}) {
    Fresh();
    Drain();  // Hosts, if the monitor sends it
    g_log.clear();
    SendRaw(Field4Bytes(path));
    ExpectViolation(monitor_->OnControlReadable(), "", "a file read request for '" + path + "'");
    EXPECT_FALSE(Reply().has_value()) << path;  // nothing read back
  }
  EXPECT_FALSE(Spawned());
}

// Field 5 of a request asks the monitor to run a hosts_access rule's
// spawn/twist command on a connection (HostsCommand, with -w/-W). Without
// wrapping there is no rule to run: a valid connection does not help.
TEST_F(ForgedListener, HostsCommandWithoutWrappingIsViolation) {
  Hello();
  UniqueFd client;
  UniqueFd conn = Accepted(2, other_port_, client);
  ASSERT_TRUE(conn.Valid());
  std::string body = SpawnBytes(2, config_.generation()).substr(2);  // {service, generation}
  std::string bytes{'\x2a', static_cast<char>(body.size())};
  SendRaw(bytes + body, {conn.Get()});
  ExpectViolation(monitor_->OnControlReadable(), "", "a hosts command without -w");
  EXPECT_FALSE(Reply().has_value());
  EXPECT_FALSE(Spawned());
}

// ---- The listener process ----

// A violation kills the listener that made it (SIGKILL), and the monitor
// notices its death.
TEST_F(ForgedListener, ViolationKillsTheListenerProcess) {
  const pid_t pid = AttachSleepingListener();
  SendRaw("\xff\xff");
  ExpectViolation(monitor_->OnControlReadable(), "undecodable request", "garbage");
  ExpectKilledAndReaped(pid);
}

// A zero-length record reads as the listener closing its channel: the
// monitor kills it all the same (Monitor::OnControlReadable), or a
// compromised listener could keep every listening socket while no fresh
// listener starts.
TEST_F(ForgedListener, EmptyRecordKillsTheListener) {
  const pid_t pid = AttachSleepingListener();
  SendRaw("");  // the listener's end stays open: it did not close, it lied
  EXPECT_EQ(monitor_->OnControlReadable(), Verdict::kViolation);
  EXPECT_FALSE(monitor_->running());
  ExpectKilledAndReaped(pid);
}

}  // namespace
