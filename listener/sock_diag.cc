// TCP connection owner lookup over NETLINK_SOCK_DIAG (see sock_diag.h).
// Runs in the sandboxed listener: socket() only in Open, before the seccomp
// filter; after that only sendto, recvfrom, getsockname and getpeername.
// The kernel's answer is checked against the question before it is believed.
#include "listener/sock_diag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cstring>

namespace inetd::listener {
namespace {

using ident::Owner;
using ident::OwnerStatus;

constexpr size_t kHeader = NLMSG_ALIGN(sizeof(nlmsghdr));  // NLMSG_HDRLEN, unsigned

// One side of the connection, in the shape inet_diag_sockid wants.
struct End {
  int family = AF_UNSPEC;
  uint16_t port = 0;   // host order
  uint32_t addr[4]{};  // network order, IPv4 in addr[0]
  uint32_t scope = 0;  // IPv6 interface, for link-local addresses
};

// IPv4-mapped IPv6 (an IPv4 client of a tcp46 socket) becomes plain IPv4:
// the connection asked about may be an IPv4 socket, and the kernel's IPv4
// lookup finds both kinds.
bool ToEnd(const sockaddr_storage& ss, End& e) {
  if (ss.ss_family == AF_INET) {
    sockaddr_in sin;
    memcpy(&sin, &ss, sizeof sin);
    e.family = AF_INET;
    e.port = ntohs(sin.sin_port);
    e.addr[0] = sin.sin_addr.s_addr;
    return true;
  }
  if (ss.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    memcpy(&sin6, &ss, sizeof sin6);
    e.port = ntohs(sin6.sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
      e.family = AF_INET;
      memcpy(&e.addr[0], &sin6.sin6_addr.s6_addr[12], 4);
    } else {
      e.family = AF_INET6;
      memcpy(e.addr, &sin6.sin6_addr, 16);
      e.scope = sin6.sin6_scope_id;
    }
    return true;
  }
  return false;
}

bool SameEnd(const End& e, __be16 port, const __be32 (&addr)[4]) {
  const size_t len = e.family == AF_INET ? 4 : 16;
  return port == htons(e.port) && memcmp(addr, e.addr, len) == 0;
}

// States in which a connection still belongs to the process that opened it.
// Not LISTEN: the kernel's exact lookup falls back to a listening socket on
// the local port, which would name the server's owner for a connection that
// does not exist. Not TIME_WAIT, CLOSE or the request states: no owner left
// or none yet (the kernel reports uid 0 for them).
bool Owned(uint8_t state) {
  switch (state) {
    case TCP_ESTABLISHED:
    case TCP_SYN_SENT:
    case TCP_FIN_WAIT1:
    case TCP_FIN_WAIT2:
    case TCP_CLOSE_WAIT:
    case TCP_LAST_ACK:
    case TCP_CLOSING:
      return true;
    default:
      return false;
  }
}

// One inet_diag_msg: is it the connection asked about, and whose is it?
Owner Judge(const inet_diag_msg& m, const End& local, const End& remote) {
  if (m.idiag_family != local.family || !SameEnd(local, m.id.idiag_sport, m.id.idiag_src) ||
      !SameEnd(remote, m.id.idiag_dport, m.id.idiag_dst))
    return {OwnerStatus::kNoUser, 0};  // another socket (a listener): not the connection
  if (!Owned(m.idiag_state) || m.idiag_inode == 0) return {OwnerStatus::kNoUser, 0};
  return {OwnerStatus::kFound, m.idiag_uid};
}

}  // namespace

Result<SockDiag> SockDiag::Open() {
  UniqueFd fd(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG));
  if (!fd.Valid()) return Errno("socket(AF_NETLINK, NETLINK_SOCK_DIAG)");
  return SockDiag(std::move(fd));
}

Owner SockDiag::TcpOwner(const sockaddr_storage& local_ss, const sockaddr_storage& remote_ss) {
  End local, remote;
  if (!fd_.Valid() || !ToEnd(local_ss, local) || !ToEnd(remote_ss, remote) ||
      local.family != remote.family)
    return {OwnerStatus::kFailed, 0};

  alignas(nlmsghdr) char buf[8192];
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;  // nl_pid 0: the kernel

  // Whatever is queued is from an earlier question that gave up: drop it.
  for (int i = 0; i < 16; ++i)
    if (recvfrom(fd_.Get(), buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) < 0 && errno != EINTR)
      break;

  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } q{};
  q.nlh.nlmsg_len = sizeof q;
  q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  q.nlh.nlmsg_flags = NLM_F_REQUEST;  // no NLM_F_DUMP: one exact 4-tuple
  q.nlh.nlmsg_seq = ++seq_;
  q.req.sdiag_family = static_cast<uint8_t>(local.family);
  q.req.sdiag_protocol = IPPROTO_TCP;
  q.req.idiag_states = ~0U;
  q.req.id.idiag_sport = htons(local.port);
  q.req.id.idiag_dport = htons(remote.port);
  memcpy(q.req.id.idiag_src, local.addr, sizeof local.addr);
  memcpy(q.req.id.idiag_dst, remote.addr, sizeof remote.addr);
  q.req.id.idiag_if = local.scope;
  q.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  q.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  ssize_t sent;
  do {
    sent = sendto(fd_.Get(), &q, sizeof q, MSG_DONTWAIT | MSG_NOSIGNAL,
                  reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent != static_cast<ssize_t>(sizeof q)) return {OwnerStatus::kFailed, 0};

  // The kernel answers inside sendto(): one inet_diag_msg, or an error
  // (ENOENT: no such socket). Anything else, or nothing, is a failure.
  for (int tries = 0; tries < 4; ++tries) {
    sockaddr_nl from{};
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(fd_.Get(), buf, sizeof buf, MSG_DONTWAIT,
                         reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return {OwnerStatus::kFailed, 0};  // EAGAIN: not there at once
    if (from_len < sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0) continue;
    // The messages of the datagram, each bounds-checked before it is read.
    const auto total = static_cast<size_t>(n);
    for (size_t off = 0; total - off >= kHeader;) {
      nlmsghdr h;
      memcpy(&h, buf + off, sizeof h);
      if (h.nlmsg_len < kHeader || h.nlmsg_len > total - off) break;
      const char* payload = buf + off + kHeader;
      const size_t payload_len = h.nlmsg_len - kHeader;
      off = std::min(total, off + NLMSG_ALIGN(h.nlmsg_len));
      if (h.nlmsg_seq != seq_) continue;  // a stale answer
      if (h.nlmsg_type == NLMSG_ERROR) {
        nlmsgerr e;
        if (payload_len < sizeof e) return {OwnerStatus::kFailed, 0};
        memcpy(&e, payload, sizeof e);
        return {e.error == -ENOENT ? OwnerStatus::kNoUser : OwnerStatus::kFailed, 0};
      }
      inet_diag_msg m;
      if (h.nlmsg_type != SOCK_DIAG_BY_FAMILY || payload_len < sizeof m)
        return {OwnerStatus::kFailed, 0};
      memcpy(&m, payload, sizeof m);
      return Judge(m, local, remote);
    }
  }
  return {OwnerStatus::kFailed, 0};
}

bool IdentTuple(int fd, uint16_t server_port, uint16_t client_port, sockaddr_storage* local,
                sockaddr_storage* remote) {
  socklen_t local_len = sizeof *local, remote_len = sizeof *remote;
  *local = {};
  *remote = {};
  if (getsockname(fd, reinterpret_cast<sockaddr*>(local), &local_len) != 0 ||
      getpeername(fd, reinterpret_cast<sockaddr*>(remote), &remote_len) != 0 ||
      local->ss_family != remote->ss_family)
    return false;
  if (local->ss_family == AF_INET && local_len >= sizeof(sockaddr_in) &&
      remote_len >= sizeof(sockaddr_in)) {
    reinterpret_cast<sockaddr_in*>(local)->sin_port = htons(server_port);
    reinterpret_cast<sockaddr_in*>(remote)->sin_port = htons(client_port);
    return true;
  }
  if (local->ss_family == AF_INET6 && local_len >= sizeof(sockaddr_in6) &&
      remote_len >= sizeof(sockaddr_in6)) {
    reinterpret_cast<sockaddr_in6*>(local)->sin6_port = htons(server_port);
    reinterpret_cast<sockaddr_in6*>(remote)->sin6_port = htons(client_port);
    return true;
  }
  return false;
}

}  // namespace inetd::listener
