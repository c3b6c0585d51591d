// sd_notify, written out: the protocol is a datagram of "KEY=value" lines to
// an AF_UNIX socket (a path, or an abstract name written with a leading @).
// Runs in the monitor; the socket name comes from the init system.
#include "privileged/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "proto/fd.h"

namespace inetd::priv {
namespace {
std::string g_socket;
}

void NotifyInit() {
  const char* s = getenv("NOTIFY_SOCKET");
  if (s != nullptr && (s[0] == '/' || s[0] == '@') && strlen(s) < sizeof(sockaddr_un::sun_path))
    g_socket = s;
  unsetenv("NOTIFY_SOCKET");
}

void Notify(const char* state) {
  if (g_socket.empty()) return;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, g_socket.data(), g_socket.size());
  if (sun.sun_path[0] == '@') sun.sun_path[0] = '\0';
  socklen_t len = offsetof(sockaddr_un, sun_path) + g_socket.size();
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  // RELOADING=1 carries the time, as Type=notify-reload asks.
  std::string msg = state;
  if (strcmp(state, "RELOADING=1") == 0) {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    msg += "\nMONOTONIC_USEC=" + std::to_string(ts.tv_sec * 1000000LL + ts.tv_nsec / 1000);
  }
  if (fd.Valid())
    (void)sendto(fd.Get(), msg.data(), msg.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sun),
                 len);
}

}  // namespace inetd::priv
