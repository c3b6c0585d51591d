// A spawn plan: everything a service's child needs, resolved by the monitor
// from its own table before clone, so nothing between clone and exec looks
// anything up (no NSS, no file reads, no string from the listener).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "proto/result.h"
#include "spawner/login_class.h"

namespace inetd::spawn {

struct Plan {
  std::string path;                // absolute path of the program
  std::vector<std::string> argv;   // exactly inetd.conf's arguments
  std::vector<std::string> env;    // "NAME=value": the connection's, then the class's
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;       // supplementary groups (initgroups' list)
  LoginClass login;                // limits, priority and umask, applied as root
  int sock = -1;                   // put on fds 0, 1 and 2
};

// Starts a child that applies `plan` and execs it; returns the child's pid.
// The caller keeps `plan.sock`. The child shares the caller's memory until
// exec, with a copy of the plan of its own; the caller does not wait for
// the exec (spawner/exec.cc): single-threaded callers only. A failure in
// the child ends it with status 127 and is logged by the caller, at
// Reaped or at the next Spawn.
Result<pid_t> Spawn(const Plan& plan);

// Default dispositions for every signal, whatever was inherited, and an
// empty mask: the monitor at start (after which it changes only SIGPIPE,
// all Spawn's child resets) and the listener's child.
void ResetSignals();

// The monitor reaped `pid`: if it was a child that failed before exec, the
// step and error are logged now (unless they were already).
void Reaped(pid_t pid);

}  // namespace inetd::spawn
