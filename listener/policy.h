// The listener's seccomp allowlist: every syscall it may make, with why.
#pragma once

#include <cstddef>
#include <span>

namespace inetd::listener {

struct ArgRule {
  unsigned arg;        // argument index
  unsigned long mask;  // compared as (arg & mask) == value
  unsigned long value;
};

struct Rule {
  int nr;               // syscall number (SCMP_SYS)
  const char* name;
  ArgRule arg;          // mask 0: no argument constraint
  const char* why;
};

// The whole policy, for the filter and for the tests that lint it.
std::span<const Rule> ListenerPolicy();

// Loads the filter into this process: no_new_privs, then the allowlist with
// kill as the default action (trap in -Dseccomp_trap=true builds). Fails
// closed: returns false only if the filter could not be loaded.
bool InstallListenerPolicy();

}  // namespace inetd::listener
