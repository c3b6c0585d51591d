// The listener's seccomp policy. A table, one reason a line; anything not
// here kills the process. No socket(), open(), execve(), clone() or
// ptrace(): the listener only works on fds the monitor gave it, and on the
// three it made before the filter (main.cc): its epoll fd, its one-second
// timerfd and auth's NETLINK_SOCK_DIAG socket.
#include "listener/policy.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <csignal>
#include <cstring>
#include <unistd.h>

namespace inetd::listener {
namespace {

#define SYS(name) __NR_##name, #name
constexpr ArgRule kAny{0, 0, 0};
// mmap/mprotect: never executable memory (W^X for the whole process).
constexpr ArgRule kNoExec{2, PROT_EXEC, 0};

constexpr Rule kPolicy[] = {
    // the channels to the monitor
    {SYS(sendmsg), kAny, "requests and logs to the monitor; an accepted connection with Spawn"},
    {SYS(recvmsg), kAny, "service table, listening sockets and replies from the monitor"},
    // the services' sockets, all created and bound by the monitor
    {SYS(accept4), kAny, "accept on listening sockets"},
    {SYS(recvfrom), kAny, "datagrams of internal services; reading connections; sock_diag"},
    {SYS(sendto), kAny, "answers of internal services; auth's sock_diag queries"},
    {SYS(read), kAny, "reading connections of internal services; the loop's timerfd"},
    {SYS(write), kAny, "writing connections of internal services"},
    {SYS(getsockname), kAny, "local address of a connection"},
    {SYS(getpeername), kAny, "peer address, for logs and limits"},
    {SYS(shutdown), kAny, "half-close of internal connections"},
    {SYS(close), kAny, "closing connections and replaced sockets"},
    // the event loop
    {SYS(epoll_wait), kAny, "event loop"},
    {SYS(epoll_pwait), kAny, "event loop (glibc may use the pwait form)"},
    {SYS(epoll_ctl), kAny, "adding and removing fds in the event loop"},
    {SYS(clock_gettime), kAny, "timeouts and rate windows (vDSO fallback)"},
    {SYS(gettimeofday), kAny, "vDSO fallback"},
    {SYS(time), kAny, "daytime and time services (vDSO fallback)"},
    // memory: never executable
    {SYS(mmap), kNoExec, "allocator"},
    {SYS(mprotect), kNoExec, "allocator (heap arenas)"},
    {SYS(munmap), kAny, "allocator"},
    {SYS(mremap), kAny, "allocator"},
    {SYS(madvise), kAny, "allocator"},
    {SYS(brk), kAny, "allocator"},
    {SYS(futex), kAny, "libstdc++ and glibc internal locks"},
    // the end
    {SYS(rt_sigreturn), kAny, "return from a signal handler"},
    {SYS(restart_syscall), kAny, "kernel restart of an interrupted call"},
    {SYS(exit), kAny, "ending a thread (libc)"},
    {SYS(exit_group), kAny, "ending when the monitor goes away"},
#if INETD_SANITIZED
    // sanitizer runtimes (never in a release build)
    {SYS(getpid), kAny, "sanitizer runtime"},
    {SYS(gettid), kAny, "sanitizer runtime"},
    {SYS(sched_yield), kAny, "sanitizer runtime"},
    {SYS(sigaltstack), kAny, "sanitizer runtime"},
    {SYS(rt_sigprocmask), kAny, "sanitizer runtime"},
    {SYS(pipe2), kAny, "sanitizer runtime: probes whether memory is readable"},
#endif
};
#undef SYS

}  // namespace

std::span<const Rule> ListenerPolicy() { return kPolicy; }

bool InstallListenerPolicy() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
#ifdef INETD_SECCOMP_TRAP
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
#else
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
#endif
  if (ctx == nullptr) return false;
  bool ok = true;
  for (const Rule& r : kPolicy) {
    int rc;
    if (r.arg.mask == 0) {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r.nr, 0);
    } else {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r.nr, 1,
                            SCMP_CMP(r.arg.arg, SCMP_CMP_MASKED_EQ, r.arg.mask, r.arg.value));
    }
    ok = ok && rc == 0;
  }
  ok = ok && seccomp_load(ctx) == 0;
  seccomp_release(ctx);
  return ok;
}

}  // namespace inetd::listener
