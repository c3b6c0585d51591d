// The monitor's child between clone and exec: runs as root until setuid.
// It trusts only the Plan, which the monitor built from its own table.
// Order: signals, session, fds, login class (limits, priority, umask),
// groups, gid, uid, proof of the drop, exec.
//
// The child shares the monitor's memory (CLONE_VM) but, unlike vfork, the
// monitor does not wait for its exec: it goes on with the next request
// while the kernel sets up the program, so two CPUs spawn in parallel. The
// child therefore touches only its own slot (stack, copy of the plan,
// argv/envp arrays, failure report), allocates nothing and makes raw
// system calls (spawner/sys.h). The monitor reuses a slot only after the
// kernel has cleared its tid, at the child's exec or exit
// (CLONE_CHILD_CLEARTID).
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>

#include "proto/log.h"
#include "spawner/plan.h"
#include "spawner/sys.h"

namespace inetd::spawn {
namespace {

// One child's everything, from clone until the kernel clears `tid`.
struct Slot {
  char* stack_top = nullptr;  // 64 KiB, a PROT_NONE guard below
  Plan plan;                  // the child's own copy
  std::vector<char*> argv, envp;
  volatile pid_t tid = 0;     // set by clone, cleared at the child's exec or exit
  pid_t pid = 0;              // the last child's, for Reaped
  // Written by the child when a step fails; reported once by the monitor.
  const char* step = nullptr;
  int err = 0;
  bool reported = true;
};
constexpr int kSlots = 8;
// Never destroyed: at the monitor's exit a child may still be reading its
// slot on its way to exec, so static destructors must not free the plans.
std::span<Slot, kSlots> g_slots{new Slot[kSlots], kSlots};

// No Log here: syslog() may allocate, or reopen its socket in the child's
// fd table while the monitor's memory records it as its own. Not built with
// ASan (nor Child): on a stack it does not know, ASan's hook before _exit
// would write a warning on fd 2, the client's socket.
[[noreturn]] __attribute__((no_sanitize("address"))) void Fail(Slot& s, const char* step,
                                                                long r) {
  s.err = static_cast<int>(-r);
  s.step = step;
  Sys(SYS_exit, 127);
  __builtin_unreachable();
}

__attribute__((no_sanitize("address"))) int Child(void* arg) {
  Slot& s = *static_cast<Slot*>(arg);
  const Plan& plan = s.plan;
  long r;
  // What the monitor changed after ResetSignals(): SIGPIPE ignored, and
  // every signal blocked across clone. exec resets caught signals itself.
  const unsigned long kernel_sigaction[4] = {};  // SIG_DFL, no flags, empty mask
  const unsigned long no_signals = 0;
  if ((r = Sys(SYS_rt_sigaction, SIGPIPE, reinterpret_cast<long>(kernel_sigaction), 0, 8)) < 0)
    Fail(s, "sigaction", r);
  if ((r = Sys(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&no_signals), 0, 8)) < 0)
    Fail(s, "sigprocmask", r);
  if ((r = Sys(SYS_setsid)) < 0) Fail(s, "setsid", r);

  // The socket on 0, 1 and 2. The monitor keeps 0-2 open on /dev/null, so
  // plan.sock is above 2 and dup3 clears close-on-exec on each copy.
  for (int fd = 0; fd <= 2; ++fd)
    if ((r = Sys(SYS_dup3, plan.sock, fd, 0)) < 0) Fail(s, "dup2", r);
  // Every other fd closes at exec (the fd table is the child's own copy).
  if ((r = Sys(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC)) < 0) Fail(s, "close_range", r);

  // While still root: limits may go up, the nice value down.
  if (Result<void> a = Apply(plan.login); !a) Fail(s, a.error().what, -a.error().code);
  if ((r = Sys(SYS_setgroups, static_cast<long>(plan.groups.size()),
               reinterpret_cast<long>(plan.groups.data()))) < 0)
    Fail(s, "setgroups", r);
  if ((r = Sys(SYS_setgid, plan.gid)) < 0) Fail(s, "setgid", r);
  if ((r = Sys(SYS_setuid, plan.uid)) < 0) Fail(s, "setuid", r);
  // Prove the drop: an unprivileged service must not get root back.
  if (plan.uid != 0 && (Sys(SYS_setuid, 0) == 0 || Sys(SYS_setresuid, -1, 0, -1) == 0))
    Fail(s, "uid 0 could be regained after setuid", -EPERM);
  if (plan.uid != 0 && plan.gid != 0 && Sys(SYS_setgid, 0) == 0)
    Fail(s, "gid 0 could be regained after setgid", -EPERM);
  r = Sys(SYS_execve, reinterpret_cast<long>(plan.path.c_str()), reinterpret_cast<long>(s.argv.data()),
          reinterpret_cast<long>(s.envp.data()));
  Fail(s, "execve", r);
}

// 64 KiB of stack with 64 KiB PROT_NONE below it, so an overflow faults
// instead of writing over the monitor's memory. Mapped once per slot.
constexpr size_t kStack = size_t{64} * 1024;
char* NewStack() {
  // cppcheck-suppress invalidFunctionArg ; MAP_ANONYMOUS takes fd -1 (mmap(2))
  void* m = mmap(nullptr, 2 * kStack, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  char* guard = static_cast<char*>(m);
  if (mprotect(guard + kStack, kStack, PROT_READ | PROT_WRITE) < 0) return munmap(m, 2 * kStack), nullptr;
  return guard + 2 * kStack;
}

void CStrings(const std::vector<std::string>& v, std::vector<char*>& out) {
  out.clear();
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
}

// A child that failed before exec: logged once, at its reaping or at the
// reuse of its slot, whichever comes first.
void Report(Slot& s) {
  if (s.reported || s.tid != 0) return;
  s.reported = true;
  if (s.step != nullptr) Log(LOG_ERR, "%s: %s: %s", s.plan.path.c_str(), s.step, strerror(s.err));
}

// A slot whose child has exec'd or exited; if all 8 are still before exec,
// wait for the first one (the kernel wakes the futex when it clears tid).
Slot& FreeSlot() {
  for (;;) {
    for (Slot& s : g_slots)
      if (s.tid == 0) return s;
    const pid_t t = g_slots[0].tid;
    const timespec ms{0, 1'000'000};  // then look at the others again
    if (t != 0) syscall(SYS_futex, &g_slots[0].tid, FUTEX_WAIT, t, &ms, nullptr, 0);
  }
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
  Slot& s = FreeSlot();
  Report(s);
  if (s.stack_top == nullptr && (s.stack_top = NewStack()) == nullptr) return Errno("mmap");
  // Built before clone: the child allocates nothing.
  s.plan = plan;
  CStrings(s.plan.argv, s.argv);
  CStrings(s.plan.env, s.envp);
  s.step = nullptr;
  s.reported = false;
  // Every signal blocked across clone, so that no handler of the monitor
  // runs in the child on shared memory; the child resets what the monitor
  // changed (its own copy: no CLONE_SIGHAND) before it unblocks them.
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  // Not fork: copying the monitor's page tables was most of its CPU per
  // connection. The kernel writes the child's tid to s.tid before the child
  // runs, and clears it (waking FreeSlot) at its exec or exit.
  const int wait_exec = kConcurrentChild ? 0 : CLONE_VFORK;
  pid_t pid = clone(Child, s.stack_top,
                    CLONE_VM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | wait_exec | SIGCHLD, &s,
                    const_cast<pid_t*>(&s.tid), nullptr, const_cast<pid_t*>(&s.tid));
  int err = errno;
  sigprocmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    s.tid = 0;
    s.reported = true;
    return Error{err, "clone"};
  }
  s.pid = pid;
  if (!kConcurrentChild) Report(s);
  return pid;
}

void Reaped(pid_t pid) {
  for (Slot& s : g_slots)
    if (s.pid == pid) Report(s);
}

}  // namespace inetd::spawn
