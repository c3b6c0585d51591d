// The monitor's child between fork and exec: runs as root until setuid.
// It trusts only the Plan, which the monitor built from its own table.
// Order: signals, session, fds, login class (limits, priority, umask),
// groups, gid, uid, proof of the drop, exec.
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proto/log.h"
#include "spawner/plan.h"

namespace inetd::spawn {
namespace {

[[noreturn]] void Fail(const Plan& plan, const char* step) {
  Log(LOG_ERR, "%s: %s: %s", plan.path.c_str(), step, strerror(errno));
  _exit(127);
}

[[noreturn]] void Child(const Plan& plan, char* const* argv, char* const* envp) {
  ResetSignals();
  if (setsid() < 0) Fail(plan, "setsid");

  // The socket on 0, 1 and 2. The monitor keeps 0-2 open on /dev/null, so
  // plan.sock is above 2 and dup2 clears close-on-exec on each copy.
  for (int fd = 0; fd <= 2; ++fd)
    if (dup2(plan.sock, fd) < 0) Fail(plan, "dup2");
  // Every other fd closes at exec. Close-on-exec rather than close, so a
  // failure below can still be logged through the monitor's log fds.
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) Fail(plan, "close_range");

  // While still root: limits may go up, the nice value down.
  if (Result<void> r = Apply(plan.login); !r) {
    errno = r.error().code;
    Fail(plan, r.error().what);
  }
  if (setgroups(plan.groups.size(), plan.groups.data()) < 0) Fail(plan, "setgroups");
  if (setgid(plan.gid) < 0) Fail(plan, "setgid");
  if (setuid(plan.uid) < 0) Fail(plan, "setuid");
  // Prove the drop: an unprivileged service must not get root back.
  if (plan.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
    errno = EPERM;
    Fail(plan, "uid 0 could be regained after setuid");
  }
  if (plan.uid != 0 && plan.gid != 0 && setgid(0) == 0) {
    errno = EPERM;
    Fail(plan, "gid 0 could be regained after setgid");
  }
  execve(plan.path.c_str(), argv, envp);
  Fail(plan, "execve");
}

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

// The monitor blocks the signals it reads with signalfd and ignores
// SIGPIPE: a service starts with the defaults and an empty mask.
void ResetSignals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);  // EINVAL for KILL/STOP: fine
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

Result<pid_t> Spawn(const Plan& plan) {
  if (plan.sock <= 2 || plan.argv.empty()) return Error{EINVAL, "bad spawn plan"};
  // Built before fork: the child allocates nothing.
  std::vector<char*> argv = CStrings(plan.argv);
  std::vector<char*> envp = CStrings(plan.env);
  pid_t pid = fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) Child(plan, argv.data(), envp.data());
  return pid;
}

}  // namespace inetd::spawn
