// inetd: the root monitor's entry point. Parses the command line, loads the
// configuration, detaches, writes the pidfile, and runs the monitor, which
// starts the sandboxed listener.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "privileged/cli.h"
#include "privileged/listener_proc.h"
#include "privileged/monitor.h"
#include "privileged/notify.h"
#include "privileged/sandbox.h"
#include "privileged/sockets.h"
#include "proto/log.h"

namespace inetd::priv {
namespace {

constexpr int kExitNoUser = 67;  // EX_NOUSER

// fds 0-2 always open, so no socket lands there and a stray write to
// "stderr" never reaches a client.
void OpenStdFds() {
  for (int fd = 0; fd <= 2; ++fd)
    if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd) _exit(1);
}

// Created and locked before the monitor detaches, so a second inetd on the
// same pidfile is refused where its operator sees it. The lock belongs to
// the open file, which survives daemon()'s fork; the fd stays open.
UniqueFd LockPidfile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd.Valid()) Die("%s: %s", path.c_str(), strerror(errno));
  if (flock(fd.Get(), LOCK_EX | LOCK_NB) < 0)
    Die("%s is locked: another inetd is running", path.c_str());
  return fd;
}

void WritePid(int fd, const std::string& path) {
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%d\n", static_cast<int>(getpid()));
  if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, n, 0) != n) Die("%s: %s", path.c_str(), strerror(errno));
}

// -t -w/-W: the hosts files are parsed where they always are, in the
// listener program (--check-hosts), as the -u user when run as root.
int CheckHosts(const Options& opts) {
  const passwd* pw = getpwnam(opts.user.c_str());
  Result<std::string> program = ListenerProgram();
  if (pw == nullptr || !program) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    if (getuid() == 0 && (setgroups(0, nullptr) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0))
      _exit(1);
    execl(program->c_str(), "inetd-listener", "--check-hosts", nullptr);
    _exit(1);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) return 1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

// -t: every check a start would make, without binding or starting
// anything. Errors go to stderr as FILE:LINE: FIELD: MESSAGE.
int CheckOnly(const Options& opts) {
  int errors = 0;
  if (getpwnam(opts.user.c_str()) == nullptr) {
    (void)fprintf(stderr, "inetd: user %s does not exist (-u)\n", opts.user.c_str());
    ++errors;
  }
  ParseOptions popts;
  if (!opts.bind_address.empty() && !ResolveBindAddress(opts.bind_address, popts)) {
    (void)fprintf(stderr, "inetd: -a %s: no IPv4 or IPv6 address\n", opts.bind_address.c_str());
    ++errors;
  }
  std::optional<Config> conf = LoadConfig(opts.config, popts);
  if (!conf) return 1;  // LoadConfig said why
  for (const ConfigError& e : conf->errors) (void)fprintf(stderr, "%s\n", e.ToString().c_str());
  errors += static_cast<int>(conf->errors.size());
  const spawn::LoginConf classes = spawn::ReadLoginConf(opts.login_conf);
  for (const ServiceConfig& s : conf->services) {
    std::string msg;
    errors += (s.internal || ServiceClass(classes, s, msg)) ? 0 : 1;
    if (!msg.empty())
      (void)fprintf(stderr, "%s:%d: login-class: %s\n", s.file.c_str(), s.line, msg.c_str());
  }
  printf("%s: %zu services, %d errors\n", opts.config.c_str(), conf->services.size(), errors);
  if (opts.wrap_external || opts.wrap_internal) errors += CheckHosts(opts);
  return errors == 0 ? 0 : 1;
}

int Main(int argc, char* argv[]) {
  OpenStdFds();
  Options opts;
  if (!ParseCommandLine(argc, argv, opts)) return kExitUsage;
  if (opts.check_only) return CheckOnly(opts);
  // Start-up errors reach the terminal in every mode; after that, only -d
  // copies the log to stderr.
  LogToSyslog("inetd", true, opts.debug);
  NotifyInit();
  if (geteuid() != 0) Die("must be started as root");

  const passwd* pw = getpwnam(opts.user.c_str());
  if (pw == nullptr) {
    Log(LOG_ERR, "user %s does not exist: create it (see etc/sysusers.d) or name another with -u",
        opts.user.c_str());
    return kExitNoUser;
  }
  if (pw->pw_uid == 0) Die("-u %s: the listener must not run as root", opts.user.c_str());
  uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid;
  Result<std::string> program = ListenerProgram();
  if (!program) Die("%s: %s", program.error().what, strerror(program.error().code));

  // Before binding anything: a second inetd must not disturb the first.
  std::string pidfile = PidfilePath(opts);
  UniqueFd pid_lock = pidfile.empty() ? UniqueFd() : LockPidfile(pidfile);

  TakeActivatedSockets();
  Monitor monitor(opts);
  if (!monitor.Load()) {
    if (!pidfile.empty()) unlink(pidfile.c_str());
    Die("%s: cannot read the configuration", opts.config.c_str());
  }
  CloseUnusedActivatedSockets();

  // Detach first, so a failure still reaches the caller's terminal.
  if (!opts.debug && !opts.foreground && daemon(0, 0) < 0)
    Die("daemon: %s%s", strerror(errno), errno == ENODEV ? " (/dev/null is no device)" : "");
  if (!opts.debug) SetLogStderr(false);
  if (pid_lock.Valid()) WritePid(pid_lock.Get(), pidfile);

  if (!SandboxMonitor()) Die("cannot confine the monitor");
  int status = monitor.Run(uid, gid, *program);
  if (!pidfile.empty()) unlink(pidfile.c_str());
  return status;
}

}  // namespace
}  // namespace inetd::priv

int main(int argc, char* argv[]) { return inetd::priv::Main(argc, argv); }
