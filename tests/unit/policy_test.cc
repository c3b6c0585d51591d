// The listener's seccomp policy: a forbidden syscall kills the process with
// SIGSYS, allowed ones work, and the table passes a minijail-style lint.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "listener/policy.h"

using inetd::listener::InstallListenerPolicy;
using inetd::listener::ListenerPolicy;

namespace {

// Runs `body` in a child under the policy; returns its wait status.
template <typename F>
int UnderPolicy(F body) {
  pid_t pid = fork();
  if (pid == 0) {
    if (!InstallListenerPolicy()) _exit(100);
    body();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

bool KilledBySigsys(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS; }

#ifndef INETD_SECCOMP_TRAP
TEST(Policy, OpenatKills) {
  int st = UnderPolicy([] { syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY); });
  EXPECT_TRUE(KilledBySigsys(st)) << st;
}

TEST(Policy, SocketKills) {
  EXPECT_TRUE(KilledBySigsys(UnderPolicy([] { syscall(SYS_socket, AF_INET, SOCK_STREAM, 0); })));
}

TEST(Policy, ExecveKills) {
  EXPECT_TRUE(KilledBySigsys(UnderPolicy([] {
    const char* argv[] = {"/bin/true", nullptr};
    syscall(SYS_execve, "/bin/true", argv, nullptr);
  })));
}

TEST(Policy, ForkKills) {
  EXPECT_TRUE(KilledBySigsys(UnderPolicy([] { syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); })));
}

TEST(Policy, ExecutableMemoryKills) {
  EXPECT_TRUE(KilledBySigsys(UnderPolicy([] {
    syscall(SYS_mmap, nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  })));
}
#endif

TEST(Policy, AllowedCallsWork) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int st = UnderPolicy([&] {
    // cppcheck-suppress invalidFunctionArg ; MAP_ANONYMOUS takes fd -1 (mmap(2))
    void* p = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(2);
    memset(p, 1, 1 << 20);
    munmap(p, 1 << 20);
    std::string grow(1 << 22, 'x');  // malloc through brk/mmap
    if (write(sv[1], "ok", 2) != 2) _exit(3);
  });
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  char buf[2];
  EXPECT_EQ(read(sv[0], buf, 2), 2);
  close(sv[0]);
  close(sv[1]);
}

// minijail's rule: dangerous calls are absent, or constrained by argument.
TEST(Policy, Lint) {
  const std::set<std::string> forbidden = {"socket", "open", "openat", "execve", "execveat",
                                           "clone", "clone3", "fork", "vfork", "ptrace",
                                           "ioctl", "prctl", "connect", "bind", "listen",
                                           "setuid", "mount", "kill", "tgkill"};
  const std::set<std::string> need_args = {"mmap", "mprotect"};
  std::set<std::string> seen;
  for (const auto& r : ListenerPolicy()) {
    std::string name = r.name;
    EXPECT_TRUE(seen.insert(name).second) << "duplicate rule " << name;
    EXPECT_EQ(forbidden.count(name), 0u) << name << " must not be allowed";
    if (need_args.count(name)) {
      EXPECT_NE(r.arg.mask, 0u) << name << " needs an argument filter";
    }
    EXPECT_GT(strlen(r.why), 5u) << name << " needs a reason";
  }
}

}  // namespace
