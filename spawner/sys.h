// System calls for the child between clone and exec. The child shares the
// monitor's memory and, where kConcurrentChild, runs while the monitor
// does: glibc's wrappers would write errno (the monitor's, through the TLS
// the child shares) when a call fails, so the child traps into the kernel
// itself. Sys returns the result, or -errno.
#pragma once

#include <cerrno>

#include <unistd.h>

namespace inetd::spawn {

#if defined(__x86_64__)
inline constexpr bool kConcurrentChild = true;
__attribute__((no_sanitize("address"))) inline long Sys(long nr, long a = 0, long b = 0,
                                                        long c = 0, long d = 0) {
  register long r10 __asm__("r10") = d;
  long r;
  __asm__ volatile("syscall"
                   : "=a"(r)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                   : "rcx", "r11", "memory");
  return r;
}
#else
// Elsewhere (untested here: no other architecture's trap written yet)
// glibc's syscall(), and the monitor waits for each child's exec
// (CLONE_VFORK), so no errno of its own is in use meanwhile.
inline constexpr bool kConcurrentChild = false;
inline long Sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0) {
  long r = syscall(nr, a, b, c, d);
  return r < 0 ? -errno : r;
}
#endif

}  // namespace inetd::spawn
