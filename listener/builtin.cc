// The table of internal services, and what the built-ins share: the wall
// clock, non-blocking stream I/O, the one-answer connection of daytime and
// time, and the datagram path with its loop protection. Runs in the sandboxed
// listener: only recvfrom, sendto and the vDSO clock are called here, and
// nothing in a datagram is trusted, its source address least of all.
#include "listener/builtin.h"

#include <arpa/inet.h>
#include <errno.h>

#include <cstdio>
#include <cstring>

#include "listener/builtin_impl.h"
#include "proto/log.h"

namespace inetd::listener {
namespace {

// The names inetd.conf gives them, as in /etc/services.
constexpr Builtin kBuiltins[] = {
    {"echo", NewEchoConn, EchoDgram},           // RFC 862
    {"discard", NewDiscardConn, DiscardDgram},  // RFC 863
    {"chargen", NewChargenConn, ChargenDgram},  // RFC 864
    {"daytime", NewDaytimeConn, DaytimeDgram},  // RFC 867
    {"time", NewTimeConn, TimeDgram},           // RFC 868
    {"tcpmux", NewTcpmuxConn, nullptr},         // RFC 1078
    {"auth", nullptr, nullptr, NewAuthConn, ConfigureAuth},  // RFC 1413
};

time_t SystemClock() { return time(nullptr); }  // vDSO: no system call
Clock g_clock = SystemClock;

// The ports of the datagram built-ins. Two of them answering each other
// (a forged echo -> chargen datagram) would ping-pong for ever; FreeBSD
// refuses sources on the ports it serves, we refuse the whole set, since
// the listener does not know which ones inetd.conf enables.
struct LoopPort {
  uint16_t port;
  const char* service;
};
constexpr LoopPort kLoopPorts[] = {
    {7, "echo"}, {9, "discard"}, {13, "daytime"}, {19, "chargen"}, {37, "time"},
};

const char* LoopService(uint16_t port) {
  for (const LoopPort& p : kLoopPorts)
    if (p.port == port) return p.service;
  return nullptr;
}

// Host (numeric) and port of a source already known to be IPv4 or IPv6.
uint16_t FormatPeer(const Datagram& d, char (&host)[INET6_ADDRSTRLEN]) {
  host[0] = '?';
  host[1] = '\0';
  if (d.peer.ss_family == AF_INET && d.peer_len >= sizeof(sockaddr_in)) {
    sockaddr_in sin;
    memcpy(&sin, &d.peer, sizeof sin);
    inet_ntop(AF_INET, &sin.sin_addr, host, sizeof host);
    return ntohs(sin.sin_port);
  }
  if (d.peer.ss_family == AF_INET6 && d.peer_len >= sizeof(sockaddr_in6)) {
    sockaddr_in6 sin6;
    memcpy(&sin6, &d.peer, sizeof sin6);
    inet_ntop(AF_INET6, &sin6.sin6_addr, host, sizeof host);
    return ntohs(sin6.sin6_port);
  }
  return 0;
}

const char* RefusalText(Refusal why) {
  switch (why) {
    case Refusal::kPrivilegedPort: return "privileged source port";
    case Refusal::kBadAddress: return "broadcast, multicast or unspecified source address";
    case Refusal::kBadFamily: return "unsupported address family";
    case Refusal::kNone:
    case Refusal::kLoop: break;
  }
  return "refused";
}

// Anyone can forge these datagrams, so the log is limited to one line per
// clock second per service; the next line counts what was left out.
void LogRefusal(DropLog& log, const Datagram& d, Refusal why) {
  const time_t now = BuiltinNow();
  if (log.logged && now == log.last) {
    ++log.suppressed;
    return;
  }
  char more[48] = "";
  if (log.suppressed > 0)
    (void)snprintf(more, sizeof more, " (%u more suppressed)", log.suppressed);
  log.logged = true;
  log.last = now;
  log.suppressed = 0;

  char host[INET6_ADDRSTRLEN];
  const uint16_t port = FormatPeer(d, host);
  const char* proto = d.peer.ss_family == AF_INET6 ? "udp6" : "udp";
  if (why == Refusal::kLoop) {
    // FreeBSD's wording, so that existing log watchers keep matching.
    inetd::Log(LOG_WARNING, "%s/%s:%s/%s loop request REFUSED from %s%s", log.service, proto,
               LoopService(port), proto, host, more);
  } else {
    inetd::Log(LOG_WARNING, "%s/%s request REFUSED from %s port %u: %s%s", log.service, proto,
               host, static_cast<unsigned>(port), RefusalText(why), more);
  }
}

}  // namespace

const Builtin* FindBuiltin(std::string_view name) {
  for (const Builtin& b : kBuiltins)
    if (b.name == name) return &b;
  return nullptr;
}

void ConfigureBuiltins(const wire::Config& config) {
  for (const Builtin& b : kBuiltins)
    if (b.configure != nullptr) b.configure(config);
}

void PrepareBuiltins() { PrepareAuth(); }

void SetBuiltinClock(Clock clock) { g_clock = clock != nullptr ? clock : SystemClock; }
time_t BuiltinNow() { return g_clock(); }

// --- stream plumbing -------------------------------------------------------

// recvfrom/sendto rather than recv/send: they are the system calls the
// seccomp policy names. MSG_DONTWAIT whatever the fd's mode; MSG_NOSIGNAL so
// a closed peer is EPIPE, not SIGPIPE.
IoResult RecvSome(int fd, void* buf, size_t cap) {
  for (;;) {
    const ssize_t n = recvfrom(fd, buf, cap, MSG_DONTWAIT, nullptr, nullptr);
    if (n > 0) return {Io::kData, static_cast<size_t>(n)};
    if (n == 0) return {Io::kEof, 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {Io::kAgain, 0};
    return {Io::kError, 0};
  }
}

IoResult SendSome(int fd, const void* buf, size_t len) {
  for (;;) {
    const ssize_t n = sendto(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, nullptr, 0);
    if (n >= 0) return {Io::kData, static_cast<size_t>(n)};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {Io::kAgain, 0};
    return {Io::kError, 0};
  }
}

bool ReplyConn::OnStart() {
  len_ = Compose(out_);
  if (len_ > out_.size()) Bug("built-in reply of %zu bytes", len_);
  return Flush();
}

bool ReplyConn::OnEvent(uint32_t events) {
  if (events & (EPOLLERR | EPOLLHUP)) return false;
  return Flush();
}

bool ReplyConn::Flush() {
  while (sent_ < len_) {
    const IoResult r = SendSome(fd(), out_.data() + sent_, len_ - sent_);
    if (r.io == Io::kAgain) return true;
    if (r.io != Io::kData) return false;
    sent_ += r.n;
  }
  return false;  // answered: the loop closes the connection
}

// --- datagram plumbing -----------------------------------------------------

// OpenBSD's rules for the udp built-ins (FreeBSD checks only the loop
// ports): never answer a source that cannot be a genuine client, since the
// answer would go to a victim or start a loop. Linux already drops most
// martian sources; this does not rely on it. A directed subnet broadcast
// source cannot be recognised without the interface list, which the sandbox
// cannot read; the kernel drops those as martians.
Refusal ClassifySource(const sockaddr_storage& peer, socklen_t len) {
  uint16_t port = 0;
  bool v4 = false;
  uint32_t addr4 = 0;  // host order
  if (peer.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
    sockaddr_in sin;
    memcpy(&sin, &peer, sizeof sin);
    port = ntohs(sin.sin_port);
    v4 = true;
    addr4 = ntohl(sin.sin_addr.s_addr);
  } else if (peer.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    sockaddr_in6 sin6;
    memcpy(&sin6, &peer, sizeof sin6);
    port = ntohs(sin6.sin6_port);
    const in6_addr& a = sin6.sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {  // an IPv4 client of a dual-stack socket
      v4 = true;
      memcpy(&addr4, &a.s6_addr[12], sizeof addr4);
      addr4 = ntohl(addr4);
    } else if (IN6_IS_ADDR_MULTICAST(&a) || IN6_IS_ADDR_UNSPECIFIED(&a)) {
      return Refusal::kBadAddress;
    }
  } else {
    return Refusal::kBadFamily;
  }
  if (v4) {
    // 0/8 "this network"; 224/4 multicast; 240/4 reserved, which holds
    // the limited broadcast 255.255.255.255.
    const uint32_t top = addr4 >> 24;
    if (top == 0 || top >= 224) return Refusal::kBadAddress;
  }
  if (LoopService(port) != nullptr) return Refusal::kLoop;
  if (port < IPPORT_RESERVED) return Refusal::kPrivilegedPort;
  return Refusal::kNone;
}

Got ReceiveDatagram(int fd, void* buf, size_t cap, DropLog& log, Datagram* d) {
  d->peer_len = sizeof d->peer;
  const ssize_t n =
      recvfrom(fd, buf, cap, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&d->peer), &d->peer_len);
  if (n < 0) return errno == EINTR ? Got::kIgnored : Got::kNothing;
  d->size = static_cast<size_t>(n);  // recvfrom never returns more than cap
  const Refusal why = ClassifySource(d->peer, d->peer_len);
  if (why == Refusal::kNone) return Got::kAnswer;
  LogRefusal(log, *d, why);
  return Got::kIgnored;
}

void SendReply(int fd, const void* buf, size_t len, const Datagram& d) {
  // A full socket buffer drops the answer, as UDP may: never wait for it.
  (void)sendto(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&d.peer), d.peer_len);
}

}  // namespace inetd::listener
