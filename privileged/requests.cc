// The monitor's whole surface towards the listener: the requests it may
// make, per state, and what each handler proves before it acts. Runs as
// root on bytes and fds from the listener, which is assumed compromised.
// Checks run in STYLE.md's order; the first failure ends the request.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include <cstring>

#include "privileged/monitor.h"
#include "privileged/notify.h"
#include "privileged/sockets.h"
#include "proto/inetd.pb.h"
#include "proto/log.h"

namespace inetd::priv {

using wire::ToMonitor;

// Anything not in this table, in the current state, is a violation.
const Monitor::Request Monitor::kRequests[] = {
    {ToMonitor::kHello, State::kAwaitHello, 0, &Monitor::OnHello},
    {ToMonitor::kSpawn, State::kRunning, 1, &Monitor::OnSpawn},        // the accepted socket
    {ToMonitor::kReadable, State::kRunning, 0, &Monitor::OnReadable},  // monitor's own socket
    {ToMonitor::kReadLists, State::kRunning, 0, &Monitor::OnReadLists},  // hosts_files.cc
    {ToMonitor::kHostsCommand, State::kRunning, 1, &Monitor::OnHostsCommand},  // the connection
};

namespace {

int SockTypeOf(SockType t) {
  switch (t) {
    case SockType::kStream: return SOCK_STREAM;
    case SockType::kDgram: return SOCK_DGRAM;
    case SockType::kRaw: return SOCK_RAW;
    case SockType::kSeqpacket: return SOCK_SEQPACKET;
  }
  return -1;
}

int SockOpt(int fd, int opt) {
  int v = -1;
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) < 0) return -1;
  return v;
}

// Whether a connection's local end `a` is the service's bound address `b`:
// same unix path, or same port and, unless bound to any, same address.
bool SameLocalEnd(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family == AF_UNIX || b.ss_family == AF_UNIX)
    return a.ss_family == b.ss_family &&
           strncmp(reinterpret_cast<const sockaddr_un&>(a).sun_path,
                   reinterpret_cast<const sockaddr_un&>(b).sun_path,
                   sizeof(sockaddr_un::sun_path)) == 0;
  auto port = [](const sockaddr_storage& s) -> int {
    if (s.ss_family == AF_INET) return reinterpret_cast<const sockaddr_in&>(s).sin_port;
    if (s.ss_family == AF_INET6) return reinterpret_cast<const sockaddr_in6&>(s).sin6_port;
    return -1;
  };
  if (port(a) < 0 || port(a) != port(b)) return false;
  // A service bound to one address: the connection arrived on that address.
  if (b.ss_family == AF_INET) {
    in_addr want = reinterpret_cast<const sockaddr_in&>(b).sin_addr;
    return want.s_addr == INADDR_ANY || (a.ss_family == AF_INET &&
                                         reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
                                             want.s_addr);
  }
  const in6_addr& want = reinterpret_cast<const sockaddr_in6&>(b).sin6_addr;
  return IN6_IS_ADDR_UNSPECIFIED(&want) ||
         (a.ss_family == AF_INET6 &&
          IN6_ARE_ADDR_EQUAL(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, &want));
}

// An IPv4 or IPv6 address (a mapped IPv4 one as IPv4) and its port, as text.
bool HostPort(const sockaddr_storage& a, std::string& host, std::string& port) {
  const auto& in = reinterpret_cast<const sockaddr_in&>(a);
  const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
  char text[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET)
    inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
  else if (a.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr))
    inet_ntop(AF_INET, &in6.sin6_addr.s6_addr[12], text, sizeof text);
  else if (a.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
  else
    return false;
  host = text;
  port = std::to_string(ntohs(a.ss_family == AF_INET ? in.sin_port : in6.sin6_port));
  return true;
}

}  // namespace

// Facts from the kernel, not the message: `fd` is a connected socket of
// the service's domain, type and protocol, accepted on the service's port.
// Gives the peer address for logging and, for TCP, the service's view of
// both ends (ucspi-tcp's and systemd's names); or false with `why`.
bool IsConnectionOf(int fd, const ServiceConfig& conf, std::string& peer,
                    std::vector<std::string>& env, const char*& why) {
  struct stat st {};
  if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) return why = "fd is not a socket", false;
  if (SockOpt(fd, SO_DOMAIN) != conf.family) return why = "socket of the wrong family", false;
  if (SockOpt(fd, SO_TYPE) != SockTypeOf(conf.type)) return why = "socket of the wrong type", false;
  if (conf.family != AF_UNIX && SockOpt(fd, SO_PROTOCOL) != conf.ipproto)
    return why = "socket of the wrong protocol", false;
  if (SockOpt(fd, SO_ACCEPTCONN) != 0) return why = "a listening socket, not a connection", false;
  sockaddr_storage local{}, remote{};
  socklen_t llen = sizeof local, rlen = sizeof remote;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) < 0 ||
      !SameLocalEnd(local, conf.addr))
    return why = "socket not accepted on this service's port", false;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &rlen) < 0)
    return why = "socket is not connected", false;
  std::string rport, lhost, lport;
  peer = "unix";
  if (HostPort(remote, peer, rport) && HostPort(local, lhost, lport) && conf.ipproto == IPPROTO_TCP)
    env = {"PROTO=TCP",          "TCPREMOTEIP=" + peer,  "TCPREMOTEPORT=" + rport,
           "TCPLOCALIP=" + lhost, "TCPLOCALPORT=" + lport, "REMOTE_ADDR=" + peer,
           "REMOTE_PORT=" + rport};
  return true;
}

// Steps 1-3: framing was checked by RecvFrame; decode on the exact length;
// (body, state) must be a row of the table and the fd count exact.
Verdict Monitor::Dispatch(wire::Frame& frame) {
  ToMonitor msg;
  if (!wire::Decode(frame, msg)) return Violation("undecodable request");
  for (const Request& r : kRequests) {
    if (r.body != msg.body_case() || r.state != state_) continue;
    if (frame.fds.size() != r.fds) return Violation("wrong number of fds for the request");
    return (this->*r.handle)(msg, frame.fds);
  }
  return Violation("request not allowed in this state");
}

// Step 4: the service id is a row of the current table, or of a recent
// table if that row's socket was kept (a connection accepted while new
// tables were on their way is served). Older is a race: refused.
Service* Monitor::Lookup(uint32_t id, uint64_t generation, Verdict& why) {
  uint64_t back = generation_ - generation;  // 1: the table just replaced
  if (generation < generation_ && back <= past_serials_.size() && id < past_serials_[back - 1].size())
    for (Service& s : services_)
      if (s.serial == past_serials_[back - 1][id] && s.sock.Valid()) return &s;
  if (generation != generation_) {
    why = Refuse(id, generation, "stale generation");
    return nullptr;
  }
  if (id >= services_.size()) {
    why = Violation("unknown service id");
    return nullptr;
  }
  return &services_[id];
}

// Step 6: the limits that protect the host, whatever the listener counted.
// -R counts as the listener does: a 60 s window opened by its first spawn.
const char* Monitor::LimitReached(Service& s) {
  if (s.max_child > 0 && s.children >= s.max_child) return "max-child reached";
  if (children_.size() >= static_cast<size_t>(kMaxChildrenTotal)) return "too many children";
  if (opts_.invocations_per_min > 0) {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
    if (s.rate_count == 0 || now - s.rate_start >= 60 * 1000L) {
      s.rate_start = now;
      s.rate_count = 0;
    }
    if (s.rate_count >= opts_.invocations_per_min) return "invocation rate";
    ++s.rate_count;
  }
  return nullptr;
}

// Hello proves nothing but that a listener is up and sandboxed (it sends
// Hello after loading its filter); the answer is the whole table.
Verdict Monitor::OnHello(const ToMonitor& m, std::vector<UniqueFd>&) {
  if (m.hello().version() != kProtocolVersion) return Violation("unknown protocol version");
  state_ = State::kRunning;
  SendConfig();
  Notify("READY=1");  // sockets bound and a sandboxed listener serving
  return Verdict::kOk;
}

// Spawn: a nowait stream/seqpacket service, current, under its limits, and
// the one fd is a connection accepted on that service's own port.
Verdict Monitor::OnSpawn(const ToMonitor& m, std::vector<UniqueFd>& fds) {
  Verdict why;
  Service* s = Lookup(m.spawn().service(), m.spawn().generation(), why);
  if (s == nullptr) return why;
  if (s->conf.internal || !ListenerAccepts(s->conf))
    return Violation("spawn request for a service that takes no connection");
  std::string peer;
  std::vector<std::string> env;
  const char* bad = nullptr;
  if (s->conf.tcpmux) {
    // A tcpmux/NAME service: the connection came through a tcpmux socket.
    bool via_tcpmux = false;
    for (const Service& mux : services_)
      via_tcpmux = via_tcpmux ||
                   (mux.conf.builtin == "tcpmux" &&
                    IsConnectionOf(fds[0].Get(), mux.conf, peer, env, bad));
    if (!via_tcpmux) return Violation("tcpmux service without a tcpmux connection");
  } else if (!IsConnectionOf(fds[0].Get(), s->conf, peer, env, bad)) {
    return Violation(bad);
  }
  if (const char* limit = LimitReached(*s))
    return Refuse(m.spawn().service(), m.spawn().generation(), limit);
  return Launch(*s, m.spawn().service(), m.spawn().generation(), fds[0].Get(), peer,
                std::move(env), m.spawn().has_hosts() ? &m.spawn().hosts() : nullptr);
}

// Readable: an external service that is handed the listening socket itself
// (wait mode, dgram), current and under its limits. No fd: the child gets
// the monitor's own copy.
Verdict Monitor::OnReadable(const ToMonitor& m, std::vector<UniqueFd>&) {
  Verdict why;
  Service* s = Lookup(m.readable().service(), m.readable().generation(), why);
  if (s == nullptr) return why;
  if (s->conf.internal || ListenerAccepts(s->conf))
    return Violation("readable report for a service that takes connections");
  if (const char* limit = LimitReached(*s))
    return Refuse(m.readable().service(), m.readable().generation(), limit);
  // A wait child expects a blocking socket. A reload from nowait may have
  // left it non-blocking; the listener asking with this generation proves
  // it no longer accepts on it.
  (void)SetNonBlocking(s->sock.Get(), false);
  return Launch(*s, m.readable().service(), m.readable().generation(), s->sock.Get(), "");
}

}  // namespace inetd::priv
