// libFuzzer target for the monitor's request handler: any bytes, as one
// SEQPACKET record with 0-3 fds of assorted kinds, into a real Monitor
// (real config, real bound socket), in state AwaitHello or Running. The
// invariant: nothing is ever spawned (no input carries a connection
// accepted on the service's port), and nothing crashes or leaks.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "privileged/monitor.h"
#include "proto/channel.h"
#include "proto/inetd.pb.h"
#include "proto/log.h"

using namespace inetd;
using namespace inetd::priv;

namespace {

struct World {
  std::unique_ptr<Monitor> monitor;
  UniqueFd pipe_r, pipe_w, udp, other_conn, other_client, other_listener;
};

uint16_t FreePort() {
  UniqueFd s(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(s.Get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(s.Get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
    abort();
  return ntohs(a.sin_port);
}

World& Setup() {
  static World* w = [] {
    SetLogSink([](int, std::string_view) {});
    auto* w = new World;
    std::string conf = "/tmp/inetd-fuzz-requests-" + std::to_string(getpid()) + ".conf";
    std::ofstream(conf) << "127.0.0.1:\n" << FreePort() << " stream tcp nowait nobody /bin/true true\n";
    Options o;
    o.config = conf;
    w->monitor = std::make_unique<Monitor>(o);
    if (!w->monitor->Load()) abort();
    unlink(conf.c_str());
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) abort();
    w->pipe_r.Reset(p[0]);
    w->pipe_w.Reset(p[1]);
    w->udp.Reset(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    // A real connection, but on another port than the service's.
    w->other_listener.Reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(w->other_listener.Get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(w->other_listener.Get(), 1) != 0 ||
        getsockname(w->other_listener.Get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
      abort();
    w->other_client.Reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(w->other_client.Get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) abort();
    w->other_conn.Reset(accept4(w->other_listener.Get(), nullptr, nullptr, SOCK_CLOEXEC));
    return w;
  }();
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = Setup();
  if (size < 1) return 0;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  UniqueFd peer(sv[1]);
  w.monitor->Attach(UniqueFd(sv[0]), -1);
  if (data[0] & 1) {  // a proper Hello first: the Running state's table
    wire::ToMonitor hello;
    hello.mutable_hello()->set_version(kProtocolVersion);
    (void)wire::SendFrame(peer.Get(), hello);
    w.monitor->OnControlReadable();
  }
  const int kinds[] = {w.pipe_w.Get(), w.udp.Get(), w.other_conn.Get(), w.other_listener.Get()};
  int fds[3];
  size_t nfds = (data[0] >> 1) & 3;
  if (nfds > 3) nfds = 3;
  for (size_t i = 0; i < nfds; ++i) fds[i] = kinds[(data[0] >> (3 + i)) & 3];
  // The record itself, raw: the monitor's framing and decoding do the rest.
  iovec iov{const_cast<uint8_t*>(data + 1), size - 1};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)];
  if (nfds > 0) {
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  if (sendmsg(peer.Get(), &mh, MSG_DONTWAIT) >= 0) w.monitor->OnControlReadable();
  w.monitor->Reap();
  if (w.monitor->child_count() != 0) __builtin_trap();  // nothing may be spawned
  return 0;
}
