// Unit tests of spawn::Spawn (spawner/exec.cc): the child shares the test's
// memory until exec (clone with CLONE_VM, each child in a slot of its own),
// so these check what the caller must see: the service's output and exit
// status, a failure before exec logged by the caller with status 127 when
// it reaps, each of many children in flight with its own plan, and the
// caller's own signal dispositions and mask untouched by the child's reset.
#include "spawner/plan.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "proto/log.h"
#include "proto/fd.h"

namespace inetd::spawn {
namespace {

std::vector<std::string> g_log;
void Capture(int /*priority*/, std::string_view text) { g_log.emplace_back(text); }

class SpawnTest : public testing::Test {
 protected:
  void SetUp() override {
    g_log.clear();
    SetLogSink(Capture);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ours_.Reset(sv[0]);
    theirs_.Reset(sv[1]);
  }

  // As root: the credentials need CAP_SETGID (setgroups), as in the monitor.
  Plan ShPlan(const std::string& script) {
    Plan p;
    p.path = "/bin/sh";
    p.argv = {"sh", "-c", script};
    p.env = {"GREETING=hello", "PATH=/usr/bin:/bin"};
    p.uid = getuid();
    p.gid = getgid();
    p.sock = theirs_.Get();
    return p;
  }

  // Waits for `pid` and returns its exit status (-1 unless it exited).
  static int ExitStatus(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
  }

  std::string ReadAll() {
    theirs_.Reset();  // the child has its copies on 0-2
    std::string out;
    char buf[256];
    for (ssize_t n; (n = read(ours_.Get(), buf, sizeof buf)) > 0;) out.append(buf, n);
    return out;
  }

  UniqueFd ours_, theirs_;
};

TEST_F(SpawnTest, RunsTheProgramOnTheSocket) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (setgroups)";
  Result<pid_t> pid = Spawn(ShPlan("echo \"$GREETING $0 $#\"; exit 3"));
  ASSERT_TRUE(pid) << pid.error().what;
  EXPECT_EQ(ReadAll(), "hello sh 0\n");
  EXPECT_EQ(ExitStatus(*pid), 3);
  EXPECT_TRUE(g_log.empty());
}

TEST_F(SpawnTest, ExecFailureIsLoggedByTheCallerWithStatus127) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (setgroups)";
  Plan p = ShPlan("");
  p.path = "/nonexistent/program";
  Result<pid_t> pid = Spawn(p);
  ASSERT_TRUE(pid) << pid.error().what;
  // Logged by the caller once it reaps the child (the monitor's Reap).
  EXPECT_EQ(ExitStatus(*pid), 127);
  Reaped(*pid);
  ASSERT_EQ(g_log.size(), 1u);
  EXPECT_EQ(g_log[0], "/nonexistent/program: execve: No such file or directory");
  Reaped(*pid);  // once only
  EXPECT_EQ(g_log.size(), 1u);
  EXPECT_EQ(ReadAll(), "");
}

// A step before the credentials fails: raising a hard limit past the
// kernel's nr_open is refused even to root.
TEST_F(SpawnTest, LoginClassFailureIsLoggedWithStatus127) {
  Plan p = ShPlan("echo never");
  p.login.limits.push_back(Limit{RLIMIT_NOFILE, {RLIM_INFINITY, RLIM_INFINITY}, "openfiles"});
  Result<pid_t> pid = Spawn(p);
  ASSERT_TRUE(pid) << pid.error().what;
  EXPECT_EQ(ExitStatus(*pid), 127);
  Reaped(*pid);
  ASSERT_EQ(g_log.size(), 1u);
  EXPECT_EQ(g_log[0].rfind("/bin/sh: openfiles: ", 0), 0u) << g_log[0];
  EXPECT_EQ(ReadAll(), "");
}

// The child undoes the monitor's SIGPIPE and its mask before exec; without
// CLONE_SIGHAND those are its own copies, so the caller keeps its own.
TEST_F(SpawnTest, CallerSignalsAreUntouched) {
  struct sigaction ign {}, before {}, after {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGPIPE, &ign, &before), 0);
  sigset_t usr1, mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &usr1, nullptr), 0);
  Result<pid_t> pid = Spawn(ShPlan("exit 0"));
  ASSERT_TRUE(pid) << pid.error().what;
  ExitStatus(*pid);
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, SIG_IGN);
  ASSERT_EQ(sigprocmask(SIG_SETMASK, nullptr, &mask), 0);
  EXPECT_EQ(sigismember(&mask, SIGUSR1), 1);
  EXPECT_EQ(sigismember(&mask, SIGTERM), 0);  // the all-blocked mask of clone time is gone
  sigprocmask(SIG_UNBLOCK, &usr1, nullptr);
  sigaction(SIGPIPE, &before, nullptr);
}

// More children in flight than slots, each with its own plan: every one
// runs its own program on its own socket (a slot reused too early would
// give a child another's arguments or socket), and the caller never waits
// for more than the oldest slot.
TEST_F(SpawnTest, ManyChildrenEachWithItsOwnPlan) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (setgroups)";
  constexpr int kChildren = 40;
  std::vector<UniqueFd> ours(kChildren);
  std::vector<pid_t> pids;
  for (int i = 0; i < kChildren; ++i) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ours[i].Reset(sv[0]);
    UniqueFd theirs(sv[1]);
    Plan p = ShPlan("echo child " + std::to_string(i));
    p.sock = theirs.Get();
    Result<pid_t> pid = Spawn(p);
    ASSERT_TRUE(pid) << pid.error().what;
    pids.push_back(*pid);
  }  // each `theirs` closed here, at once: the child has its own copies
  for (int i = 0; i < kChildren; ++i) {
    std::string out;
    char buf[64];
    for (ssize_t n; (n = read(ours[i].Get(), buf, sizeof buf)) > 0;) out.append(buf, n);
    EXPECT_EQ(out, "child " + std::to_string(i) + "\n");
    EXPECT_EQ(ExitStatus(pids[i]), 0);
  }
  EXPECT_TRUE(g_log.empty());
}

TEST_F(SpawnTest, RefusesABadPlan) {
  Plan p = ShPlan("exit 0");
  p.sock = 2;
  EXPECT_FALSE(Spawn(p));
  p = ShPlan("exit 0");
  p.argv.clear();
  EXPECT_FALSE(Spawn(p));
}

}  // namespace
}  // namespace inetd::spawn
