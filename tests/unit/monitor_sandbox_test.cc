// The monitor's self-confinement: denied syscalls fail with EPERM, dropped
// capabilities are gone from the bounding set, and the monitor's own
// effective set lacks what it does not use. Run in forked children.
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "privileged/sandbox.h"

namespace {

// Runs `body` in a sandboxed child; the child's exit code is body's result.
template <typename F>
int InSandbox(F body) {
  pid_t pid = fork();
  if (pid == 0) {
    if (!inetd::priv::SandboxMonitor()) _exit(100);
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

bool EffectiveHas(int cap) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  unsigned long long eff = 0;
  while (f != nullptr && fgets(line, sizeof line, f) != nullptr)
    if (strncmp(line, "CapEff:", 7) == 0) eff = strtoull(line + 7, nullptr, 16);
  if (f != nullptr) (void)fclose(f);
  return ((eff >> cap) & 1) != 0;
}

class MonitorSandbox : public testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
  }
};

TEST_F(MonitorSandbox, DeniedSyscallsFailWithEperm) {
#if !INETD_SANITIZED_ADDRESS
  EXPECT_EQ(InSandbox([] {
              long r = ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
              return r == -1 && errno == EPERM ? 0 : 1;
            }),
            0);
#endif
  EXPECT_EQ(InSandbox([] {
              long r = syscall(SYS_init_module, nullptr, 0, "");
              return r == -1 && errno == EPERM ? 0 : 1;
            }),
            0);
  EXPECT_EQ(InSandbox([] {
              long r = syscall(SYS_kexec_load, 0, 0, nullptr, 0);
              return r == -1 && errno == EPERM ? 0 : 1;
            }),
            0);
}

TEST_F(MonitorSandbox, BoundingSetLosesWhatNoServiceNeeds) {
  EXPECT_EQ(InSandbox([] {
              bool gone = prctl(PR_CAPBSET_READ, CAP_SYS_MODULE) == 0 &&
                          prctl(PR_CAPBSET_READ, CAP_SYS_PTRACE) == 0 &&
                          prctl(PR_CAPBSET_READ, CAP_BPF) == 0;
              // Kept for services that run as root (sshd -i needs these).
              bool kept = prctl(PR_CAPBSET_READ, CAP_SYS_CHROOT) == 1 &&
                          prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN) == 1 &&
                          prctl(PR_CAPBSET_READ, CAP_SETUID) == 1;
              return gone && kept ? 0 : 1;
            }),
            0);
}

TEST_F(MonitorSandbox, MonitorKeepsOnlyWhatItUses) {
  EXPECT_EQ(InSandbox([] {
              bool dropped = !EffectiveHas(CAP_SYS_ADMIN) && !EffectiveHas(CAP_NET_RAW) &&
                             !EffectiveHas(CAP_SYS_MODULE);
              bool kept = EffectiveHas(CAP_SETUID) && EffectiveHas(CAP_SETGID) &&
                          EffectiveHas(CAP_NET_BIND_SERVICE) && EffectiveHas(CAP_KILL) &&
                          EffectiveHas(CAP_SETPCAP);
              return dropped && kept ? 0 : 1;
            }),
            0);
}

TEST_F(MonitorSandbox, OrdinaryWorkStillWorks) {
  EXPECT_EQ(InSandbox([] {
              pid_t c = fork();
              if (c == 0) {
                execl("/bin/true", "true", nullptr);
                _exit(9);
              }
              int st;
              waitpid(c, &st, 0);
              return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
            }),
            0);
}

}  // namespace
