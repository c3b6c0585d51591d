// Starting the listener (see listener_proc.h). Runs in the monitor and, for
// a few lines after fork, as root in the child that becomes the listener.
// Trusts only its own arguments; the listener is untrusted once it runs.
#include "privileged/listener_proc.h"

#include <cap-ng.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "proto/log.h"
#include "spawner/plan.h"

namespace inetd::priv {
namespace {

// Between fork and exec: drop everything, keep the channels, exec.
[[noreturn]] void BecomeListener(const std::string& program, uid_t uid, gid_t gid, int control,
                                 int log, bool resolver) {
  spawn::ResetSignals();
  if (dup2(control, kListenerControlFd) < 0 || dup2(log, kListenerLogFd) < 0) _exit(126);
  // Only the channels survive. stderr stays in sanitizer builds, for reports.
#if INETD_SANITIZED
  close(0);
  close(1);
#else
  close_range(0, 2, 0);
#endif
  close_range(kListenerLogFd + 1, ~0U, 0);
  if (chdir("/") < 0) _exit(126);
  // libcap-ng 0.8.3: clear the state first, or change_id fails.
  capng_clear(CAPNG_SELECT_BOTH);
  if (capng_change_id(static_cast<int>(uid), static_cast<int>(gid),
                      static_cast<capng_flags_t>(CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING)) != 0)
    _exit(126);
  if (setuid(0) == 0) _exit(126);  // the drop must be final
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(126);
  // Set after the uid change, which clears it: the listener dies with us.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) _exit(126);
  char name[] = "inetd-listener";
  char flag[] = "--resolver";
  char* argv[] = {name, resolver ? flag : nullptr, nullptr};
  char* envp[] = {nullptr};
  execve(program.c_str(), argv, envp);
  _exit(127);
}

}  // namespace

Result<std::string> ListenerProgram() {
  std::string path = INETD_LISTENER_PATH;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string beside(self, static_cast<size_t>(n));
    beside.replace(beside.rfind('/') + 1, std::string::npos, "inetd-listener");
    if (access(beside.c_str(), X_OK) == 0) path = beside;
  }
  struct stat st {};
  if (stat(path.c_str(), &st) < 0) return Errno("inetd-listener not found");
  if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return Error{EPERM, "inetd-listener must be owned by root and not group/other writable"};
  return path;
}

Result<ListenerProc> StartListener(const std::string& program, uid_t uid, gid_t gid,
                                   bool resolver) {
  int control[2], log[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control) < 0)
    return Errno("socketpair");
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, log) < 0) {
    close(control[0]);
    close(control[1]);
    return Errno("socketpair");
  }
  ListenerProc p;
  p.control.Reset(control[0]);
  p.log.Reset(log[0]);
  UniqueFd theirs_control(control[1]), theirs_log(log[1]);
  p.pid = fork();
  if (p.pid < 0) return Errno("fork");
  if (p.pid == 0) BecomeListener(program, uid, gid, theirs_control.Get(), theirs_log.Get(), resolver);
  return p;
}

}  // namespace inetd::priv
