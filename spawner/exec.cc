// The monitor's child between clone and exec: runs as root until setuid.
// It trusts only the Plan, which the monitor built from its own table.
// Order: signals, session, fds, login class (limits, priority, umask),
// groups, gid, uid, proof of the drop, exec.
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proto/log.h"
#include "spawner/plan.h"

namespace inetd::spawn {
namespace {

// The child runs in the monitor's memory (CLONE_VM) while the monitor
// sleeps (CLONE_VFORK). It reads the plan and the arrays built before
// clone, and writes only `step` and `err`, which the monitor logs.
struct Shared {
  const Plan& plan;
  char* const* argv;
  char* const* envp;
  const char* step = nullptr;  // the step that failed
  int err = 0;
};

// No Log here: syslog() may allocate, or reopen its socket in the child's
// fd table while the monitor's memory records it as its own. Not built with
// ASan (nor Child): on a stack it does not know, ASan's hook before _exit
// would write a warning on fd 2, the client's socket.
[[noreturn]] __attribute__((no_sanitize("address"))) void Fail(Shared& s, const char* step) {
  s.err = errno;
  s.step = step;
  _exit(127);
}

__attribute__((no_sanitize("address"))) int Child(void* arg) {
  Shared& s = *static_cast<Shared*>(arg);
  const Plan& plan = s.plan;
  ResetSignals(false);
  if (setsid() < 0) Fail(s, "setsid");

  // The socket on 0, 1 and 2. The monitor keeps 0-2 open on /dev/null, so
  // plan.sock is above 2 and dup2 clears close-on-exec on each copy.
  for (int fd = 0; fd <= 2; ++fd)
    if (dup2(plan.sock, fd) < 0) Fail(s, "dup2");
  // Every other fd closes at exec (the fd table is the child's own copy).
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) Fail(s, "close_range");

  // While still root: limits may go up, the nice value down.
  if (Result<void> r = Apply(plan.login); !r) {
    errno = r.error().code;
    Fail(s, r.error().what);
  }
  if (setgroups(plan.groups.size(), plan.groups.data()) < 0) Fail(s, "setgroups");
  if (setgid(plan.gid) < 0) Fail(s, "setgid");
  if (setuid(plan.uid) < 0) Fail(s, "setuid");
  // Prove the drop: an unprivileged service must not get root back.
  if (plan.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
    errno = EPERM;
    Fail(s, "uid 0 could be regained after setuid");
  }
  if (plan.uid != 0 && plan.gid != 0 && setgid(0) == 0) {
    errno = EPERM;
    Fail(s, "gid 0 could be regained after setgid");
  }
  execve(plan.path.c_str(), s.argv, s.envp);
  Fail(s, "execve");
}

// The child's stack, mapped once and reused: the monitor is single-threaded
// and sleeps while a child uses it. 64 KiB below it stay PROT_NONE, so an
// overflow faults instead of writing over the monitor's memory.
constexpr size_t kStack = size_t{64} * 1024;
char* ChildStackTop() {
  static char* top = nullptr;
  if (top != nullptr) return top;
  // cppcheck-suppress invalidFunctionArg ; MAP_ANONYMOUS takes fd -1 (mmap(2))
  void* m = mmap(nullptr, 2 * kStack, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  char* guard = static_cast<char*>(m);
  if (mprotect(guard + kStack, kStack, PROT_READ | PROT_WRITE) < 0) return munmap(m, 2 * kStack), nullptr;
  return top = guard + 2 * kStack;
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
void ResetSignals(bool all) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)  // EINVAL for KILL/STOP: fine
    if (all || sig == SIGPIPE) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

Result<pid_t> Spawn(const Plan& plan) {
  if (plan.sock <= 2 || plan.argv.empty()) return Error{EINVAL, "bad spawn plan"};
  char* stack = ChildStackTop();
  if (stack == nullptr) return Errno("mmap");
  // Built before clone: the child allocates nothing.
  std::vector<char*> argv = CStrings(plan.argv);
  std::vector<char*> envp = CStrings(plan.env);
  Shared s{plan, argv.data(), envp.data()};
  // Every signal blocked across clone, so that no handler of the monitor
  // runs in the child on shared memory; the child resets the dispositions
  // (its own copy: no CLONE_SIGHAND) before it unblocks them.
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  // Not fork: copying the monitor's page tables was most of its CPU per
  // connection. The monitor sleeps until the child execs or exits.
  pid_t pid = clone(Child, stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &s);
  int err = errno;
  sigprocmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return Error{err, "clone"};
  // A child that failed has exited 127; the monitor reaps it and logs that.
  if (s.step != nullptr) Log(LOG_ERR, "%s: %s: %s", plan.path.c_str(), s.step, strerror(s.err));
  return pid;
}

}  // namespace inetd::spawn
