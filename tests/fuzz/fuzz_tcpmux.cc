// libFuzzer target for the tcpmux built-in (RFC 1078): any bytes as the
// client's side of a connection, through the real Conn over a socketpair.
// Invariants: a handoff names only a table entry, and the request line is
// never read past its end.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string_view>

#include "listener/builtin_impl.h"
#include "proto/log.h"

using namespace inetd;
using namespace inetd::listener;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool init = [] {
    SetLogSink([](int, std::string_view) {});
    SetTcpmuxTable({{"finger", 1, false}, {"Date", 2, true}});
    return true;
  }();
  (void)init;
  (void)ParseTcpmuxRequest(std::string_view(reinterpret_cast<const char*>(data), size));
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  UniqueFd client(sv[1]);
  size_t sent = size > 4096 ? 4096 : size;
  if (sent > 0 && send(client.Get(), data, sent, MSG_DONTWAIT) < 0) sent = 0;
  shutdown(client.Get(), SHUT_WR);
  std::unique_ptr<Conn> conn = FindBuiltin("tcpmux")->stream(UniqueFd(sv[0]));
  bool open = conn->OnStart();
  for (int i = 0; i < 8 && open; ++i) open = conn->OnEvent(EPOLLIN | EPOLLOUT);
  int64_t to = conn->HandoffTo();
  if (to != -1 && to != 1 && to != 2) __builtin_trap();
  if (to >= 0) {
    // What is left for the service starts right after the first '\n'.
    const uint8_t* nl = static_cast<const uint8_t*>(memchr(data, '\n', sent));
    if (nl == nullptr) __builtin_trap();
    size_t rest = sent - static_cast<size_t>(nl + 1 - data);
    char buf[4096];
    ssize_t n = recv(conn->fd(), buf, sizeof buf, MSG_DONTWAIT);
    if (static_cast<size_t>(n < 0 ? 0 : n) != rest) __builtin_trap();
  }
  return 0;
}
