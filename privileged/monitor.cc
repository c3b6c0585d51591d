// The monitor's state and main loop (the requests are in requests.cc).
// Runs as root for the life of the daemon. Trusts its own table and the
// kernel; the listener's frames go through Dispatch before anything acts.
#include "privileged/monitor.h"

#include <pwd.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "privileged/listener_proc.h"
#include "privileged/notify.h"
#include "privileged/sockets.h"
#include "proto/inetd.pb.h"
#include "proto/log.h"
#include "spawner/plan.h"

namespace inetd::priv {
namespace {

// Listener restarts: at most this many deaths in kRestartWindow seconds;
// the first restart is at once, then the delay doubles from 400 ms to 5 s.
constexpr int kMaxRestarts = 10;
constexpr time_t kRestartWindow = 60;

wire::SocketType WireType(SockType t) {
  switch (t) {
    case SockType::kStream: return wire::STREAM;
    case SockType::kDgram: return wire::DGRAM;
    case SockType::kRaw: return wire::RAW;
    case SockType::kSeqpacket: return wire::SEQPACKET;
  }
  return wire::SOCKET_TYPE_UNSPECIFIED;
}


int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// The auth built-in names the owner of a connection, and the sandboxed
// listener has no passwd file and no NSS: it gets the uid -> name pairs of
// the passwd database, read here at each configuration, and answers a uid
// it lacks with its number. User names are readable by every local user;
// they go to the listener only when an auth service is configured. Bounded
// to half a frame; NSS back ends that do not enumerate (sssd's default)
// give only the local users.
void AddUserNames(wire::Config& c) {
  constexpr size_t kMaxBytes = wire::kMaxFrame / 2;
  size_t bytes = 0;
  setpwent();
  while (const passwd* pw = getpwent()) {
    bytes += strlen(pw->pw_name) + 16;
    if (bytes > kMaxBytes) {
      Log(LOG_WARNING, "auth: %d user names sent to the listener; the other users are answered "
          "by number", c.users_size());
      break;
    }
    wire::User* u = c.add_users();
    u->set_uid(pw->pw_uid);
    u->set_name(pw->pw_name);
  }
  endpwent();
}

}  // namespace

std::string DaemonName(const ServiceConfig& c) {
  if (c.internal) return c.name;
  return c.program.substr(c.program.rfind('/') + 1);
}

std::optional<spawn::LoginClass> ServiceClass(const spawn::LoginConf& classes,
                                              const ServiceConfig& c, std::string& msg) {
  const passwd* pw = getpwnam(c.user.c_str());
  return spawn::ResolveClass(classes, c.login_class, pw != nullptr ? pw : getpwuid(c.uid), msg);
}

Monitor::Monitor(Options opts) : opts_(std::move(opts)) {
  if (!opts_.bind_address.empty() && !ResolveBindAddress(opts_.bind_address, parse_opts_))
    Die("-a %s: no IPv4 or IPv6 address", opts_.bind_address.c_str());
}

bool Monitor::Load() {
  std::optional<Config> conf = LoadConfig(opts_.config, parse_opts_);
  if (!conf) return false;
  for (const ConfigError& e : conf->errors) Log(LOG_ERR, "%s", e.ToString().c_str());
  const spawn::LoginConf classes = spawn::ReadLoginConf(opts_.login_conf);

  std::vector<Service> next;
  for (ServiceConfig& c : conf->services) {
    Service s;
    // Before the socket: an entry whose class cannot be applied is skipped.
    if (!c.internal) {
      std::string msg;
      std::optional<spawn::LoginClass> login = ServiceClass(classes, c, msg);
      if (!msg.empty())
        Log(login ? LOG_WARNING : LOG_ERR, "%s:%d: login-class: %s%s", c.file.c_str(), c.line,
            msg.c_str(), login ? "" : "; entry skipped");
      if (!login) continue;
      s.login = std::move(*login);
    }
    // tcpmux/NAME entries have no socket: the tcpmux built-in's connections
    // reach them after its handshake.
    if (c.tcpmux) {
      s.max_child = c.max_child >= 0 ? c.max_child : opts_.max_child;
      s.serial = next_serial_++;
      for (Service& old : services_)
        if (old.conf.tcpmux && old.conf.name == c.name) {
          s.children = old.children;
          s.serial = old.serial;
        }
      s.conf = std::move(c);
      next.push_back(std::move(s));
      continue;
    }
    // An unchanged socket is kept, with its children and serial.
    for (Service& old : services_) {
      if (old.sock.Valid() && SameSocket(old.conf, c)) {
        s.sock = std::move(old.sock);
        s.children = old.children;
        s.serial = old.serial;
        s.spawned = old.spawned;
        s.refused = old.refused;
        // One the listener now accepts on must not block. Never cleared
        // here: the old table may still accept on it; OnReadable clears it
        // once the listener asks with the new generation.
        if (ListenerAccepts(c)) (void)SetNonBlocking(s.sock.Get(), true);
        break;
      }
    }
    if (!s.sock.Valid()) {
      Result<UniqueFd> fd = BindService(c);
      if (!fd) {
        Log(LOG_ERR, "%s:%d: %s: %s: %s", c.file.c_str(), c.line, ServiceLabel(c).c_str(),
            fd.error().what, strerror(fd.error().code));
        continue;
      }
      s.sock = std::move(*fd);
      s.serial = next_serial_++;
    }
    if (std::count_if(next.begin(), next.end(), [](const Service& n) { return !n.conf.tcpmux; }) >=
        static_cast<long>(wire::kMaxFds)) {
      Log(LOG_ERR, "%s:%d: %s: more than %zu sockets; entry skipped", c.file.c_str(), c.line,
          ServiceLabel(c).c_str(), wire::kMaxFds);
      continue;
    }
    s.max_child = c.max_child >= 0 ? c.max_child : opts_.max_child;
    s.conf = std::move(c);
    next.push_back(std::move(s));
  }
  // Removed services: their sockets close with `services_`; unix paths go.
  for (const Service& old : services_)
    if (old.sock.Valid() && old.conf.family == AF_UNIX)
      unlink(reinterpret_cast<const sockaddr_un&>(old.conf.addr).sun_path);
  past_serials_.emplace_front();
  for (const Service& old : services_) past_serials_.front().push_back(old.serial);
  if (past_serials_.size() > kPastTables) past_serials_.pop_back();
  services_ = std::move(next);
  ++generation_;
  Log(LOG_INFO, "%s: %zu services, generation %llu", opts_.config.c_str(), services_.size(),
      static_cast<unsigned long long>(generation_));
  if (state_ == State::kRunning) SendConfig();
  return true;
}

void Monitor::SendConfig() {
  wire::ToListener msg;
  wire::Config* c = msg.mutable_config();
  c->set_generation(generation_);
  wire::Options* o = c->mutable_options();
  o->set_log_connections(opts_.log_connections);
  o->set_wrap_external(opts_.wrap_external);
  o->set_wrap_internal(opts_.wrap_internal);
  o->set_max_child(opts_.max_child);
  o->set_per_ip_rate(opts_.per_ip_rate);
  o->set_per_ip_child(opts_.per_ip_child);
  o->set_invocations_per_min(opts_.invocations_per_min);
  o->set_debug(opts_.debug);
  o->set_ipv6_prefix(opts_.ipv6_prefix);
  std::vector<int> fds;
  for (uint32_t id = 0; id < services_.size(); ++id) {
    const Service& s = services_[id];
    wire::Service* w = c->add_services();
    w->set_id(id);
    w->set_name(s.conf.name);
    w->set_proto(s.conf.proto);
    w->set_type(WireType(s.conf.type));
    w->set_wait(s.conf.wait);
    w->set_builtin(s.conf.builtin);
    w->set_max_child(s.max_child);
    w->set_per_ip_rate(s.conf.per_ip_rate >= 0 ? s.conf.per_ip_rate : opts_.per_ip_rate);
    w->set_per_ip_child(s.conf.per_ip_child >= 0 ? s.conf.per_ip_child : opts_.per_ip_child);
    w->set_daemon(DaemonName(s.conf));
    w->set_running(s.children);
    if (s.conf.internal)  // a built-in's options; external programs' stay here
      for (const std::string& a : s.conf.argv) w->add_builtin_args(a);
    w->set_serial(s.serial);
    w->set_tcpmux(s.conf.tcpmux);
    w->set_tcpmux_plus(s.conf.tcpmux_plus);
    if (!s.conf.tcpmux) fds.push_back(s.sock.Get());
  }
  for (const Service& s : services_)
    if (s.conf.builtin == "auth") {
      AddUserNames(*c);
      break;
    }
  if (!Send(msg, fds) || !Wrapping()) return;
  ReadHosts(true);
}

// A service's child as its entry says, on `sock`, with `env` first (getenv
// finds these, whatever the login class sets).
spawn::Plan PlanFor(const Service& s, int sock, std::vector<std::string> env) {
  spawn::Plan plan;
  plan.path = s.conf.program;
  plan.argv = s.conf.argv;
  plan.env = std::move(env);
  plan.env.insert(plan.env.end(), s.login.env.begin(), s.login.env.end());
  plan.uid = s.conf.uid;
  plan.gid = s.conf.gid;
  plan.groups = s.conf.groups;
  plan.login = s.login;
  plan.sock = sock;
  return plan;
}

// Step 7: act from the monitor's own table only.
Verdict Monitor::Launch(Service& s, uint32_t id, uint64_t generation, int sock,
                        const std::string& peer, std::vector<std::string> env,
                        const wire::HostsMatch* hosts) {
  spawn::Plan plan = PlanFor(s, sock, std::move(env));
  if (hosts != nullptr && opts_.wrap_external && !ApplyHostsRule(s, *hosts, plan))
    return Refuse(id, generation, "hosts_access user option");
  Result<pid_t> pid = spawn::Spawn(plan);
  if (!pid) {
    Log(LOG_ERR, "%s: %s: %s", ServiceLabel(s.conf).c_str(), pid.error().what,
        strerror(pid.error().code));
    return Refuse(id, generation, "fork failed");
  }
  ++s.children;
  ++s.spawned;
  children_[*pid] = Child{s.serial};
  if (opts_.log_connections) {
    if (peer.empty())
      Log(LOG_INFO, "%s: started [%d]", ServiceLabel(s.conf).c_str(), *pid);
    else
      Log(LOG_INFO, "%s from %s [%d]", ServiceLabel(s.conf).c_str(), peer.c_str(), *pid);
  }
  wire::ToListener msg;
  msg.mutable_spawned()->set_service(id);
  msg.mutable_spawned()->set_generation(generation);
  msg.mutable_spawned()->set_pid(*pid);
  Send(msg);
  return Verdict::kOk;
}

Verdict Monitor::Refuse(uint32_t id, uint64_t generation, const char* reason) {
  Log(LOG_DEBUG, "refused request for service %u: %s", id, reason);
  if (generation == generation_ && id < services_.size()) ++services_[id].refused;
  wire::ToListener msg;
  msg.mutable_refused()->set_service(id);
  msg.mutable_refused()->set_generation(generation);
  msg.mutable_refused()->set_reason(reason);
  Send(msg);
  return Verdict::kRefused;
}

// The listener broke the protocol: assume it is compromised. Kill it; the
// main loop starts a fresh one. The sockets stay with the monitor.
Verdict Monitor::Violation(const char* what) {
  Log(LOG_ERR, "listener protocol violation: %s; restarting the listener", what);
  if (listener_pid_ > 0) kill(listener_pid_, SIGKILL);
  control_.Reset();
  state_ = State::kAwaitHello;
  return Verdict::kViolation;
}

// Never blocks: a listener that stops reading its channel is broken.
bool Monitor::Send(const wire::ToListener& msg, const std::vector<int>& fds) {
  if (!control_.Valid()) return false;
  Result<void> r = wire::SendFrame(control_.Get(), msg, fds, MSG_DONTWAIT);
  if (!r) {
    Log(LOG_ERR, "to listener: %s: %s", r.error().what, strerror(r.error().code));
    Violation("listener does not read its channel");
    return false;
  }
  return true;
}

void Monitor::Attach(UniqueFd control, pid_t pid) {
  control_ = std::move(control);
  listener_pid_ = pid;
  state_ = State::kAwaitHello;
}

Verdict Monitor::OnControlReadable() {
  Result<wire::Frame> frame =
      wire::RecvFrame(control_.Get(), wire::kMaxRequest, 1, MSG_DONTWAIT);
  if (!frame) {
    if (frame.error().code == EAGAIN) return Verdict::kOk;
    if (frame.error().code == 0) {  // the listener went away; reaped on SIGCHLD
      Log(LOG_DEBUG, "listener closed its channel");
      if (listener_pid_ > 0) kill(listener_pid_, SIGKILL);  // or sent an empty record
      control_.Reset();
      state_ = State::kAwaitHello;
      return Verdict::kViolation;
    }
    return Violation(frame.error().what);
  }
  return Dispatch(*frame);
}

bool Monitor::OnLogReadable(int fd) {
  Result<wire::Frame> frame = wire::RecvFrame(fd, wire::kMaxRequest, 0, MSG_DONTWAIT);
  if (!frame) {
    if (frame.error().code == EAGAIN) return true;
    if (frame.error().code != 0) Violation(frame.error().what);
    return false;
  }
  wire::Log rec;
  if (!wire::Decode(*frame, rec)) {
    Violation("malformed log record");
    return false;
  }
  std::string text = rec.text().substr(0, 1024);
  for (char& ch : text)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  // Its facility is kept (hosts_access logs to auth, or where `severity`
  // says); its level is capped: the listener cannot raise an alarm above error.
  int prio = static_cast<int>(rec.priority() & (LOG_FACMASK | LOG_PRIMASK));
  if (LOG_PRI(prio) < LOG_ERR) prio = (prio & LOG_FACMASK) | LOG_ERR;
  Log(prio, "%s", text.c_str());
  return true;
}

void Monitor::Reap() {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == listener_pid_) {
      Log(LOG_ERR, "listener [%d] %s %d", pid, WIFSIGNALED(status) ? "killed by signal" : "exited",
          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      listener_pid_ = -1;
      listener_dead_ = true;
      control_.Reset();
      state_ = State::kAwaitHello;
      continue;
    }
    spawn::Reaped(pid);  // logs a failure before exec
    auto it = children_.find(pid);
    if (it == children_.end()) continue;
    uint64_t serial = it->second.serial;
    children_.erase(it);
    for (uint32_t id = 0; id < services_.size(); ++id) {
      Service& s = services_[id];
      if (s.serial != serial) continue;
      --s.children;
      if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0 || opts_.log_connections)
        Log(WIFSIGNALED(status) ? LOG_WARNING : LOG_INFO, "%s[%d]: exited, %s %d",
            s.conf.program.c_str(), pid, WIFSIGNALED(status) ? "signal" : "status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      if (state_ == State::kRunning) {
        wire::ToListener msg;
        msg.mutable_exited()->set_service(id);
        msg.mutable_exited()->set_generation(generation_);
        msg.mutable_exited()->set_pid(pid);
        msg.mutable_exited()->set_status(status);
        Send(msg);
      }
      break;
    }
  }
}

int Monitor::Run(uid_t listener_uid, gid_t listener_gid, const std::string& listener_program) {
  spawn::ResetSignals();  // then no disposition but SIGPIPE's may change
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGUSR1}) sigaddset(&mask, sig);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  (void)signal(SIGPIPE, SIG_IGN);
  UniqueFd sigfd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  if (!sigfd.Valid() || !ep.Valid()) Die("signalfd/epoll: %s", strerror(errno));
  auto watch = [&](int fd, int op) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep.Get(), op, fd, &ev);
  };
  watch(sigfd.Get(), EPOLL_CTL_ADD);
  if (Wrapping()) {
    inotify_.Reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!inotify_.Valid()) Die("inotify: %s", strerror(errno));
    WatchHosts();
    watch(inotify_.Get(), EPOLL_CTL_ADD);
  }

  UniqueFd log;
  std::deque<int64_t> deaths;  // times of recent listener deaths
  int64_t restart_at = 0;
  for (;;) {
    if (listener_dead_) {
      // Restart with backoff; give up when it keeps dying.
      listener_dead_ = false;
      int64_t now = NowMs();
      deaths.push_back(now);
      while (deaths.front() < now - kRestartWindow * 1000) deaths.pop_front();
      if (static_cast<int>(deaths.size()) > kMaxRestarts)
        Die("listener died %d times in %lld s; giving up", kMaxRestarts,
            static_cast<long long>(kRestartWindow));
      restart_at = now + (deaths.size() <= 1 ? 0 : std::min<int64_t>(100LL << deaths.size(), 5000));
      if (log.Valid())
        while (OnLogReadable(log.Get())) {
        }  // keep its last words
    }
    if (listener_pid_ < 0 && NowMs() >= restart_at) {
      Result<ListenerProc> p = StartListener(listener_program, listener_uid, listener_gid, Wrapping());
      if (!p) Die("cannot start the listener: %s: %s", p.error().what, strerror(p.error().code));
      Log(LOG_DEBUG, "listener [%d] started", p->pid);
      log = std::move(p->log);
      Attach(std::move(p->control), p->pid);
      watch(control_.Get(), EPOLL_CTL_ADD);
      watch(log.Get(), EPOLL_CTL_ADD);
    }
    int timeout = listener_pid_ < 0 ? static_cast<int>(std::max<int64_t>(restart_at - NowMs(), 0)) : -1;
    epoll_event evs[8];
    int n = epoll_wait(ep.Get(), evs, 8, timeout);
    if (n < 0 && errno != EINTR) Die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == sigfd.Get()) {
        signalfd_siginfo si;
        while (read(sigfd.Get(), &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGHUP) {
            Notify("RELOADING=1");
            Log(LOG_INFO, "SIGHUP: reloading %s", opts_.config.c_str());
            if (!Load()) Log(LOG_ERR, "%s unreadable: keeping the running table", opts_.config.c_str());
            Notify("READY=1");
          } else if (si.ssi_signo == SIGUSR1) {
            LogStatus();
          } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            Log(LOG_INFO, "exiting on signal %d", static_cast<int>(si.ssi_signo));
            Notify("STOPPING=1");
            Shutdown();
            return 0;
          }
        }
        Reap();  // SIGCHLD, possibly coalesced with others
      } else if (control_.Valid() && fd == control_.Get()) {
        // Several requests per wake-up, bounded; stop when drained.
        char peek;
        for (int k = 0; k < 64 && control_.Valid(); ++k) {
          if (OnControlReadable() == Verdict::kViolation) break;
          if (!control_.Valid() || recv(control_.Get(), &peek, 1, MSG_PEEK | MSG_DONTWAIT) < 0) break;
        }
      } else if (log.Valid() && fd == log.Get()) {
        if (!OnLogReadable(log.Get())) log.Reset();
      } else if (fd == inotify_.Get()) {
        OnHostsChanged();
      }
    }
  }
}

// SIGUSR1: one line per service from the monitor's table; the listener
// adds its own counts (accepts, refusals by kind) through its log.
void Monitor::LogStatus() {
  Log(LOG_INFO, "status: generation %llu, %zu children, listener [%d] %s",
      static_cast<unsigned long long>(generation_), children_.size(), listener_pid_,
      state_ == State::kRunning ? "running" : "starting");
  for (const Service& s : services_)
    Log(LOG_INFO, "status: %s: children %d/%d, spawned %llu, refused %llu",
        ServiceLabel(s.conf).c_str(), s.children, s.max_child,
        static_cast<unsigned long long>(s.spawned), static_cast<unsigned long long>(s.refused));
  wire::ToListener msg;
  msg.mutable_status();
  Send(msg);
}

void Monitor::Shutdown() {
  // The listener holds the listening sockets: reaped before we exit, so that
  // an inetd started right after can bind them. SIGKILL: it keeps nothing.
  if (listener_pid_ > 0 && kill(listener_pid_, SIGKILL) == 0)
    (void)waitpid(listener_pid_, nullptr, 0);
  for (const Service& s : services_)
    if (s.sock.Valid() && s.conf.family == AF_UNIX)
      unlink(reinterpret_cast<const sockaddr_un&>(s.conf.addr).sun_path);
  services_.clear();
}

}  // namespace inetd::priv
