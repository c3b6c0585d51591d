// inetd-listener: started only by inetd, already as the unprivileged user
// with no capabilities and no_new_privs, with the control channel on fd 3
// and the log channel on fd 4. It loads its seccomp filter before it reads
// a byte, then serves.
#include <sys/epoll.h>

#include <cstdlib>
#include <cstring>
#include <unistd.h>

#include "listener/builtin.h"
#include "listener/check.h"
#include "listener/loop.h"
#include "listener/policy.h"
#include "listener/resolver.h"
#include "proto/channel.h"
#include "proto/inetd.pb.h"
#include "proto/log.h"

#if INETD_SANITIZED_ADDRESS
// LeakSanitizer's exit-time check needs ptrace and threads, which the
// sandbox forbids; the unit tests run the same code under LSan instead.
extern "C" int __lsan_is_turned_off() { return 1; }
#endif

namespace {

constexpr int kControlFd = 3;
constexpr int kLogFd = 4;

// Log lines travel to the monitor, which owns syslog and stderr.
void SendLog(int priority, std::string_view text) {
  inetd::wire::Log rec;
  rec.set_priority(static_cast<uint32_t>(priority));
  rec.set_text(std::string(text.substr(0, 1024)));
  (void)inetd::wire::SendFrame(kLogFd, rec);
}

}  // namespace

int main(int argc, char* argv[]) {
  // inetd -t: parse the hosts files and go (check.h).
  if (argc == 2 && strcmp(argv[1], "--check-hosts") == 0) return inetd::listener::CheckHostsFiles();
  inetd::SetLogSink(SendLog);
  if (getuid() == 0 || geteuid() == 0) {
    inetd::Log(LOG_CRIT, "inetd-listener must not run as root");
    return 1;
  }
  inetd::UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  if (!ep.Valid()) {
    inetd::Log(LOG_CRIT, "epoll_create1: %s", strerrordesc_np(errno));
    return 1;
  }
  inetd::UniqueFd tick = inetd::listener::MakeTick();
  if (!tick.Valid()) {
    inetd::Log(LOG_CRIT, "timerfd: %s", strerrordesc_np(errno));
    return 1;
  }
  // auth's netlink socket is opened here, as this unprivileged user: the
  // filter allows no socket() (listener/policy.cc).
  inetd::listener::PrepareBuiltins();
  // With -w or -W (the monitor says --resolver), host and user names come
  // from a helper forked now, before the filter (listener/resolver.h).
  inetd::UniqueFd resolver;
  if (argc == 2 && strcmp(argv[1], "--resolver") == 0) resolver = inetd::listener::StartResolver();
  if (!inetd::listener::InstallListenerPolicy()) {
    inetd::Log(LOG_CRIT, "cannot load the seccomp filter");
    return 1;
  }
  return inetd::listener::Loop(kControlFd, std::move(ep), std::move(tick), std::move(resolver))
      .Run();
}
