// Binding the services' sockets (see sockets.h). Runs in the monitor, as
// root, on addresses from inetd.conf; never touches network input.
#include "privileged/sockets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "proto/log.h"

namespace inetd::priv {
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

std::vector<UniqueFd> g_activated;

bool Connectionful(SockType t) { return t == SockType::kStream || t == SockType::kSeqpacket; }

// A unix socket's path: remove a stale socket (never another kind of file),
// bind with a umask that yields exactly the mode, then chown the new inode
// through its directory without following symlinks.
Result<void> BindUnix(int fd, const ServiceConfig& s) {
  const auto* sun = reinterpret_cast<const sockaddr_un*>(&s.addr);
  std::string path = sun->sun_path;
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error{EEXIST, "path exists and is not a socket"};
    unlink(path.c_str());
  }
  mode_t old = umask(~s.sock_mode & 0777);
  int rc = bind(fd, reinterpret_cast<const sockaddr*>(&s.addr), s.addrlen);
  umask(old);
  if (rc < 0) return Errno("bind");
  if (fchownat(AT_FDCWD, path.c_str(), s.sock_uid, s.sock_gid, AT_SYMLINK_NOFOLLOW) < 0)
    return Errno("chown of the socket path");
  return {};
}

// A passed socket is this service's when the kernel says it has the same
// type and local address (address, port, or unix path).
bool IsServiceSocket(int fd, const ServiceConfig& s) {
  int type = -1;
  socklen_t tlen = sizeof type;
  sockaddr_storage local{};
  socklen_t llen = sizeof local;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SockTypeOf(s.type) ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) < 0)
    return false;
  return llen == s.addrlen && memcmp(&local, &s.addr, s.family == AF_UNIX ? llen : 8) == 0 &&
         (s.family != AF_INET6 ||
          memcmp(&reinterpret_cast<sockaddr_in6&>(local).sin6_addr,
                 &reinterpret_cast<const sockaddr_in6&>(s.addr).sin6_addr, sizeof(in6_addr)) == 0);
}

}  // namespace

void TakeActivatedSockets() {
  const char* pid = getenv("LISTEN_PID");
  const char* fds = getenv("LISTEN_FDS");
  // Read as atol would (leading digits, the rest ignored), without its
  // undefined behaviour on overflow: strtol saturates.
  if (pid != nullptr && fds != nullptr && strtol(pid, nullptr, 10) == getpid()) {
    long n = strtol(fds, nullptr, 10);
    for (long i = 0; i < n && i < 1024; ++i) {
      int fd = 3 + static_cast<int>(i);
      fcntl(fd, F_SETFD, FD_CLOEXEC);
      g_activated.emplace_back(fd);
    }
  }
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
}

void CloseUnusedActivatedSockets() {
  for (UniqueFd& fd : g_activated)
    if (fd.Valid()) Log(LOG_WARNING, "passed socket (fd %d) matches no service: closed", fd.Get());
  g_activated.clear();
}

bool ListenerAccepts(const ServiceConfig& s) {
  return s.internal || (Connectionful(s.type) && !s.wait);
}

Result<void> SetNonBlocking(int fd, bool on) {
  int flags = fcntl(fd, F_GETFL);
  flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (flags < 0 || fcntl(fd, F_SETFL, flags) < 0) return Errno("O_NONBLOCK");
  return {};
}

Result<UniqueFd> BindService(const ServiceConfig& s) {
  for (UniqueFd& passed : g_activated) {
    if (!passed.Valid() || !IsServiceSocket(passed.Get(), s)) continue;
    if (auto r = SetNonBlocking(passed.Get(), ListenerAccepts(s)); !r) return r.error();
    Log(LOG_INFO, "%s: using the socket passed by the init system", ServiceLabel(s).c_str());
    // cppcheck-suppress returnStdMoveLocal ; `passed` is a reference into g_activated
    return std::move(passed);
  }
  int type = SockTypeOf(s.type) | SOCK_CLOEXEC | (ListenerAccepts(s) ? SOCK_NONBLOCK : 0);
  UniqueFd fd(socket(s.family, type, s.family == AF_UNIX ? 0 : s.ipproto));
  if (!fd.Valid()) return Errno("socket");
  int on = 1;
  if (s.family != AF_UNIX && setsockopt(fd.Get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
    return Errno("SO_REUSEADDR");
  if (s.family == AF_INET6) {
    int v6only = s.v6only ? 1 : 0;
    if (setsockopt(fd.Get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
      return Errno("IPV6_V6ONLY");
  }
  if (s.family == AF_UNIX) {
    if (auto r = BindUnix(fd.Get(), s); !r) return r.error();
  } else if (bind(fd.Get(), reinterpret_cast<const sockaddr*>(&s.addr), s.addrlen) < 0) {
    return Errno("bind");
  }
  if (Connectionful(s.type) && listen(fd.Get(), SOMAXCONN) < 0) return Errno("listen");
  return fd;
}

}  // namespace inetd::priv
