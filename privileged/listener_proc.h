// Starting the sandboxed listener: the monitor's only other child kind.
#pragma once

#include <sys/types.h>

#include <string>

#include "proto/fd.h"
#include "proto/result.h"

namespace inetd::priv {

// The listener's ends of the channels, at fixed fds after exec.
constexpr int kListenerControlFd = 3;
constexpr int kListenerLogFd = 4;

struct ListenerProc {
  pid_t pid = -1;
  UniqueFd control;  // the monitor's end of the control channel
  UniqueFd log;      // the monitor's end of the log channel
};

// The program to exec: beside the running inetd when that exists (the build
// tree), else the installed path. It must be root-owned and not writable by
// group or others: the monitor runs it from root before the drop.
Result<std::string> ListenerProgram();

// Forks and execs the listener as uid:gid with no supplementary groups, no
// capabilities (bounding set cleared), no_new_privs, and only its two
// channel fds open.
// `resolver` (-w, -W): it forks its name-lookup helper before its filter.
Result<ListenerProc> StartListener(const std::string& program, uid_t uid, gid_t gid,
                                   bool resolver);

}  // namespace inetd::priv
