// Who owns a TCP connection on this host: one exact-match query to the
// kernel's sock_diag netlink interface (the one ss(8) uses), which needs no
// privilege. For the auth built-in; runs in the sandboxed listener.
#pragma once

#include <sys/socket.h>

#include <cstdint>

#include "listener/ident.h"
#include "proto/fd.h"
#include "proto/result.h"

namespace inetd::listener {

class SockDiag {
 public:
  SockDiag() = default;
  explicit SockDiag(UniqueFd fd) : fd_(std::move(fd)) {}

  // socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
  // NETLINK_SOCK_DIAG). The listener calls it once, before its seccomp
  // filter forbids socket(), and as its own unprivileged user: a netlink
  // socket opened by root would carry CAP_NET_ADMIN, which sock_diag checks
  // at SOCK_DESTROY.
  static Result<SockDiag> Open();

  bool Valid() const { return fd_.Valid(); }

  // The owner of the TCP socket whose local end is `local` and remote end
  // `remote` (IPv4, IPv6, or IPv4-mapped IPv6, ports included). kNoUser when
  // no such connection is open, or it has no owner left (TIME_WAIT, orphaned,
  // not yet accepted); a listening socket is never taken for it. Never
  // blocks: the kernel answers within sendto(), and an answer not there at
  // once is kFailed.
  ident::Owner TcpOwner(const sockaddr_storage& local, const sockaddr_storage& remote);

 private:
  UniqueFd fd_;
  uint32_t seq_ = 0;
};

// RFC 1413 section 3: the query names ports only; the addresses are those of
// the ident connection `fd` itself. Fills the 4-tuple of the connection the
// query is about. False if `fd` has no IPv4 or IPv6 addresses.
bool IdentTuple(int fd, uint16_t server_port, uint16_t client_port, sockaddr_storage* local,
                sockaddr_storage* remote);

}  // namespace inetd::listener
