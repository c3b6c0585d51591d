// Binding the services' sockets (see sockets.h). Runs in the monitor, as
// root, on addresses from inetd.conf; never touches network input.
#include "privileged/sockets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <string>

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

}  // namespace

bool ListenerAccepts(const ServiceConfig& s) {
  return s.internal || (Connectionful(s.type) && !s.wait);
}

Result<UniqueFd> BindService(const ServiceConfig& s) {
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
