// The listener's event loop (see loop.h). Everything here handles network
// input or the monitor's answers; nothing here is trusted by the monitor.
#include "listener/loop.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>

#include <cstring>
#include <functional>
#include <string>

#include "proto/channel.h"
#include "proto/log.h"

namespace inetd::listener {
namespace {

// epoll keys: the control channel, the resolver, the one-second tick, a
// service (by id), a connection (by key).
constexpr uint64_t kControlKey = 0;
constexpr uint64_t kResolverKey = 1;
constexpr uint64_t kTickKey = 2;
constexpr int64_t kTickMs = 1000;  // the tick's period (MakeTick), whole seconds
constexpr uint64_t kServiceTag = 1ULL << 62;
constexpr uint64_t kConnTag = 2ULL << 62;
constexpr uint64_t kTagMask = 3ULL << 62;

// Bounded work per socket per turn, so one flooded service cannot starve
// the others.
constexpr int kAcceptsPerTurn = 16;
// After a refusal, a wait or dgram service is polled again after this long:
// its datagram is still queued, and asking again at once would spin.
constexpr int64_t kRefusedPauseMs = 1000;
// All internal connections together.
constexpr size_t kMaxInternalConns = 16384;

PerIpTable::Settings PerIpSettings() {
  PerIpTable::Settings s;
  s.hash_key = RandomHashKey();
  return s;
}

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

UniqueFd MakeTick() {
  UniqueFd tick(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  const itimerspec period{{kTickMs / 1000, 0}, {kTickMs / 1000, 0}};
  if (tick.Valid() && timerfd_settime(tick.Get(), 0, &period, nullptr) != 0) return {};
  return tick;
}

Loop::Loop(int control, UniqueFd ep, UniqueFd tick, UniqueFd resolver)
    : control_(control), ep_(std::move(ep)), tick_(std::move(tick)), per_ip_(PerIpSettings()) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kControlKey;
  epoll_ctl(ep_.Get(), EPOLL_CTL_ADD, control_, &ev);
  ev.data.u64 = kTickKey;
  epoll_ctl(ep_.Get(), EPOLL_CTL_ADD, tick_.Get(), &ev);
  if (resolver.Valid()) {
    ev.data.u64 = kResolverKey;
    epoll_ctl(ep_.Get(), EPOLL_CTL_ADD, resolver.Get(), &ev);
  }
  wrap_.SetResolver(std::move(resolver));
}

bool Loop::SendToMonitor(const wire::ToMonitor& m, int fd) {
  int fds[1] = {fd};
  Result<void> r = wire::SendFrame(control_, m, fd >= 0 ? std::span<const int>(fds, 1)
                                                        : std::span<const int>());
  if (!r) {
    Log(LOG_ERR, "to monitor: %s: %s", r.error().what, strerrordesc_np(r.error().code));
    done_ = true;
  }
  return r.has_value();
}

Loop::Svc* Loop::Current(uint32_t id, uint64_t generation) {
  if (generation != generation_ || id >= svcs_.size()) return nullptr;
  return &svcs_[id];
}

// Poll a service's socket exactly when it may produce work now.
void Loop::UpdatePolling(Svc& s, uint32_t id) {
  if (!s.sock.Valid()) return;  // tcpmux/NAME: nothing to poll
  bool full = s.conf.max_child() > 0 && s.running >= s.conf.max_child();
  bool want = !s.waiting && s.resume_at == 0 && !(s.builtin == nullptr && full) &&
              !s.parked && (!s.wrapped || wrap_.Ready());
  // Terminated by -R: drained as if closed, except a wait-mode stream socket
  // (accepting on it could block): that one waits for the comeback.
  if (s.looping) want = !s.waiting && (s.accepts || s.conf.type() == wire::DGRAM ||
                                       s.conf.type() == wire::RAW);
  // FreeBSD is silent when max-child is reached; we say it, once per episode
  // (and once a minute at most), so an operator sees why connections wait.
  bool at_max = full && s.builtin == nullptr && !s.conf.wait();
  if (at_max && !s.at_max) {
    int64_t now = NowMs();
    if (now - s.max_logged_at >= kRateWindowMs) {
      Log(LOG_NOTICE, "%s/%s: max-child %u reached; new connections wait",
          s.conf.name().c_str(), s.conf.proto().c_str(), s.conf.max_child());
      s.max_logged_at = now;
    }
  }
  s.at_max = at_max;
  if (want == s.polled) return;
  epoll_event ev{};
  ev.events = want ? static_cast<uint32_t>(EPOLLIN) : 0U;
  ev.data.u64 = kServiceTag | id;
  epoll_ctl(ep_.Get(), EPOLL_CTL_MOD, s.sock.Get(), &ev);
  s.polled = want;
}

// A new table replaces the old one whole; old sockets close here (the
// monitor keeps its own copies of the ones still in use).
void Loop::Apply(const wire::Config& c, std::vector<UniqueFd>& fds) {
  // One socket per service, but tcpmux/NAME entries have none.
  size_t want = 0;
  for (const wire::Service& w : c.services()) want += w.tcpmux() ? 0 : 1;
  if (want != fds.size()) {
    Log(LOG_ERR, "config with %zu sockets expected but %zu received", want, fds.size());
    done_ = true;
    return;
  }
  // The monitor holds the same open files: closing ours would leave them in
  // the epoll set, firing with stale ids. Remove them first.
  std::unordered_map<uint64_t, uint64_t> accepted;  // counters follow kept sockets
  for (Svc& old : svcs_) {
    accepted[old.conf.serial()] = old.accepted;
    if (old.sock.Valid()) epoll_ctl(ep_.Get(), EPOLL_CTL_DEL, old.sock.Get(), nullptr);
  }
  svcs_.clear();
  reconfigured_ = true;
  generation_ = c.generation();
  options_ = c.options();
  SetLogDebug(options_.debug());
  ConfigureBuiltins(c);
  svcs_.resize(c.services_size());
  std::vector<TcpmuxEntry> tcpmux;
  size_t next_fd = 0;
  for (uint32_t id = 0; id < svcs_.size(); ++id) {
    Svc& s = svcs_[id];
    s.conf = c.services(static_cast<int>(id));
    s.running = s.conf.running();
    if (auto it = accepted.find(s.conf.serial()); it != accepted.end()) s.accepted = it->second;
    if (s.conf.tcpmux()) {  // reached through the tcpmux built-in only
      tcpmux.push_back(TcpmuxEntry{s.conf.name(), id, s.conf.tcpmux_plus()});
      s.accepts = true;
      continue;
    }
    s.sock = std::move(fds[next_fd++]);
    // Per-IP counts follow the service's name across reloads, as FreeBSD's.
    s.ip_key = static_cast<uint32_t>(
        std::hash<std::string>{}(s.conf.name() + "/" + s.conf.proto()));
    s.wrapped = Wrapper::Wraps(options_, s.conf);
    if (!s.conf.builtin().empty()) {
      s.builtin = FindBuiltin(s.conf.builtin());
      if (s.builtin == nullptr) Log(LOG_ERR, "%s: unknown internal service", s.conf.name().c_str());
    }
    bool connectionful = s.conf.type() == wire::STREAM || s.conf.type() == wire::SEQPACKET;
    s.accepts = s.builtin != nullptr || (connectionful && !s.conf.wait());
    // A wait service with a child still running stays paused until Exited.
    s.waiting = !s.accepts && s.running > 0;
    // A built-in this listener lacks is never polled: its connections must
    // not reach the monitor as spawn requests (a violation, and a restart).
    if (!s.conf.builtin().empty() && s.builtin == nullptr) s.waiting = true;
    epoll_event ev{};
    ev.events = 0;
    ev.data.u64 = kServiceTag | id;
    epoll_ctl(ep_.Get(), EPOLL_CTL_ADD, s.sock.Get(), &ev);
    UpdatePolling(s, id);
  }
  SetTcpmuxTable(std::move(tcpmux));
}

void Loop::OnMonitor() {
  Result<wire::Frame> frame = wire::RecvFrame(control_, wire::kMaxFrame, wire::kMaxFds);
  if (!frame) {
    if (frame.error().code != EAGAIN) done_ = true;  // the monitor is gone: so are we
    return;
  }
  wire::ToListener m;
  if (!wire::Decode(*frame, m)) {
    Log(LOG_ERR, "undecodable message from the monitor");
    done_ = true;
    return;
  }
  if (m.body_case() != wire::ToListener::kConfig && !frame->fds.empty()) frame->fds.clear();
  switch (m.body_case()) {
    case wire::ToListener::kConfig:
      Apply(m.config(), frame->fds);
      break;
    case wire::ToListener::kSpawned:
      per_ip_.Started(TakePending(m.spawned().service(), m.spawned().generation()),
                      m.spawned().pid());
      if (Svc* s = Current(m.spawned().service(), m.spawned().generation())) {
        // A nowait dgram service is polled again once its child runs.
        if (!s->accepts && !s->conf.wait()) s->waiting = false;
        UpdatePolling(*s, m.spawned().service());
      }
      break;
    case wire::ToListener::kRefused:
      per_ip_.Cancel(TakePending(m.refused().service(), m.refused().generation()));
      if (Svc* s = Current(m.refused().service(), m.refused().generation())) {
        Log(LOG_WARNING, "%s/%s: refused: %s", s->conf.name().c_str(), s->conf.proto().c_str(),
            m.refused().reason().c_str());
        if (s->accepts) {
          if (s->running > 0) --s->running;
        } else {
          s->waiting = false;
          s->resume_at = NowMs() + kRefusedPauseMs;
        }
        UpdatePolling(*s, m.refused().service());
      }
      break;
    case wire::ToListener::kExited:
      per_ip_.Exited(m.exited().pid());  // whatever its generation
      if (Svc* s = Current(m.exited().service(), m.exited().generation())) {
        if (s->running > 0) --s->running;
        if (s->conf.wait()) s->waiting = false;
        UpdatePolling(*s, m.exited().service());
      }
      break;
    case wire::ToListener::kHosts:
      OnHosts(m.hosts());
      break;
    case wire::ToListener::kStatus:
      for (const Svc& s : svcs_)
        Log(LOG_INFO, "status: %s/%s: %s, running %u, accepted %llu, internal connections %zu",
            s.conf.name().c_str(), s.conf.proto().c_str(),
            s.looping ? "terminated (looping)"
                      : s.polled ? "polling" : (s.waiting ? "waiting for its child" : "paused"),
            s.running,
            static_cast<unsigned long long>(s.accepted), s.builtin ? conns_.size() : 0);
      break;
    default:
      Log(LOG_ERR, "unknown message from the monitor");
      done_ = true;
  }
}

// The answer to the oldest open request of that service and generation:
// the monitor answers every Spawn and Readable with one Spawned or Refused,
// in the order asked (requests.cc). Requests skipped over (which would be a
// monitor bug) give their child slots back; an answer to nothing is ignored.
PerIpTable::Ticket Loop::TakePending(uint32_t service, uint64_t generation) {
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->service != service || it->generation != generation) continue;
    if (it != pending_.begin()) Log(LOG_ERR, "monitor skipped %td answers", it - pending_.begin());
    for (auto skipped = pending_.begin(); skipped != it; ++skipped) per_ip_.Cancel(skipped->ticket);
    PerIpTable::Ticket t = it->ticket;
    pending_.erase(pending_.begin(), it + 1);
    return t;
  }
  return PerIpTable::kNoTicket;
}

// Per-IP limits (FreeBSD's cpmip, then room_conn) for one accepted
// connection; false, with FreeBSD's log line, when one refuses it.
bool Loop::AdmitPeer(const Svc& s, const sockaddr_storage& peer, int64_t now, uint32_t per_child,
                     PerIpTable::Ticket* ticket) {
  *ticket = PerIpTable::kNoTicket;
  uint32_t per_min = s.conf.per_ip_rate();
  if (per_min == 0 && per_child == 0) return true;
  std::optional<PeerKey> key =
      KeyOf(peer, options_.ipv6_prefix() > 0 ? static_cast<int>(options_.ipv6_prefix())
                                             : kDefaultV6Prefix);
  if (!key) return true;  // unix sockets have no per-IP limits
  PerIpTable::Verdict v = per_ip_.Admit(s.ip_key, *key, per_min, per_child, now, ticket);
  if (v == PerIpTable::Verdict::kOk) return true;
  Log(LOG_ERR, "%s",
      RefusalMessage(v, s.conf.name(), TextOf(peer).text,
                     v == PerIpTable::Verdict::kRate ? per_min : per_child)
          .c_str());
  return false;
}

// -R (FreeBSD's looping check): false when the service is over its rate
// and terminated; it is drained until the pause ends (Expire).
bool Loop::Invoke(Svc& s, uint32_t id, int64_t now) {
  switch (s.invocations.Invoke(now, options_.invocations_per_min())) {
    case InvocationRate::Verdict::kOk:
      return true;
    case InvocationRate::Verdict::kLooping:
      Log(LOG_ERR, "%s", LoopingMessage(s.conf.name(), s.conf.proto()).c_str());
      s.looping = true;
      s.dropped = 0;
      UpdatePolling(s, id);
      return false;
    case InvocationRate::Verdict::kTerminated:
      break;
  }
  return false;
}

// While terminated, what arrives is dropped at once, with no fork: as if
// the socket were closed (FreeBSD closes it; ours belongs to the monitor),
// so nothing stale waits in the backlog for the comeback.
void Loop::Drain(Svc& s) {
  for (int i = 0; i < kAcceptsPerTurn; ++i) {
    if (s.accepts) {
      UniqueFd c(accept4(s.sock.Get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.Valid()) break;
    } else {
      char byte;
      if (recvfrom(s.sock.Get(), &byte, 1, MSG_DONTWAIT, nullptr, nullptr) < 0) break;
    }
    ++s.dropped;
  }
}

// nowait stream: accept, check the limits in FreeBSD's order (per-IP rate,
// per-IP children, then -R), and hand the connection to the monitor to
// spawn. A refused connection is closed here at once, without a fork.
void Loop::AcceptExternal(Svc& s, uint32_t id) {
  for (int i = 0; i < kAcceptsPerTurn; ++i) {
    if (s.conf.max_child() > 0 && s.running >= s.conf.max_child()) break;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    UniqueFd c(accept4(s.sock.Get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
    if (!c.Valid()) break;
    if (!SpawnFor(s, id, std::move(c), peer)) return;
  }
}

// One connection for an external service (accepted on its socket, or
// handed over by tcpmux): the limits, then a Spawn request with the fd.
// False when the service stops taking connections for now.
bool Loop::SpawnFor(Svc& s, uint32_t id, UniqueFd c, const sockaddr_storage& peer) {
  if (s.wrapped && !s.conf.tcpmux()) {
    Wrap(s, id, std::move(c), peer);
    return true;
  }
  return Admitted(s, id, std::move(c), peer, nullptr);
}

// Past hosts_access (`match`: the rule that allowed it, if any).
bool Loop::Admitted(Svc& s, uint32_t id, UniqueFd c, const sockaddr_storage& peer,
                    const wire::HostsMatch* match) {
  int64_t now = NowMs();
  PerIpTable::Ticket ticket;
  if (!AdmitPeer(s, peer, now, s.conf.per_ip_child(), &ticket)) return true;
  if (!Invoke(s, id, now)) {
    per_ip_.Cancel(ticket);
    return false;
  }
  wire::ToMonitor m;
  m.mutable_spawn()->set_service(id);
  m.mutable_spawn()->set_generation(generation_);
  if (match != nullptr) *m.mutable_spawn()->mutable_hosts() = *match;
  if (!SendToMonitor(m, c.Get())) return false;
  pending_.push_back(Pending{id, generation_, ticket});
  ++s.running;
  ++s.accepted;
  return true;
}

// tcpmux named a service: it gets the connection as it stands.
void Loop::Handoff(uint32_t id, UniqueFd c) {
  if (id >= svcs_.size() || !svcs_[id].conf.tcpmux()) return;
  Svc& s = svcs_[id];
  if (s.conf.max_child() > 0 && s.running >= s.conf.max_child()) {
    Log(LOG_WARNING, "tcpmux/%s: max-child %u reached; connection closed", s.conf.name().c_str(),
        s.conf.max_child());
    return;
  }
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (getpeername(c.Get(), reinterpret_cast<sockaddr*>(&peer), &len) < 0) return;
  SpawnFor(s, id, std::move(c), peer);
}

// hosts_access for a connection (`c`) or the datagram at the head of the
// queue (`c` invalid) of a wrapped service: decided now, or parked until
// the resolver has the names the rules need.
void Loop::Wrap(Svc& s, uint32_t id, UniqueFd c, const sockaddr_storage& peer) {
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  (void)getsockname(c.Valid() ? c.Get() : s.sock.Get(), reinterpret_cast<sockaddr*>(&local), &len);
  WrapDecision d = wrap_.Decide(s.conf, peer, local, options_.log_connections(), NowMs());
  Parked p{id, generation_, std::move(c), peer};
  if (!d.pending) return Decided(d, std::move(p));
  if (!p.conn.Valid()) {
    s.parked = true;  // not polled: its datagram stays at the head
    UpdatePolling(s, id);
  }
  parked_.emplace(d.ticket, std::move(p));
}

void Loop::Resume(const WrapDecision& d) {
  auto it = parked_.find(d.ticket);
  if (it == parked_.end()) return;
  Parked p = std::move(it->second);
  parked_.erase(it);
  Decided(d, std::move(p));
}

// FreeBSD's order after the check: a refused datagram is read and dropped,
// a refused connection closed; the rule's spawn and twist go to the monitor.
void Loop::Decided(const WrapDecision& d, Parked p) {
  Svc* s = Current(p.service, p.generation);
  if (s == nullptr) return;  // a new table meanwhile: dropped
  if (!p.conn.Valid()) {
    s->parked = false;
    if (d.allow) {
      if (s->builtin != nullptr) s->builtin->dgram(s->sock.Get());
      else AskReadable(*s, p.service);
    } else {
      char byte;
      (void)recv(s->sock.Get(), &byte, 1, MSG_DONTWAIT);
    }
    return UpdatePolling(*s, p.service);
  }
  bool external = s->builtin == nullptr;
  // An allowed external service's rule travels with its Spawn instead.
  if ((d.spawn || d.twist) && !(d.allow && external)) {
    wire::ToMonitor m;
    m.mutable_hosts_command()->set_service(p.service);
    m.mutable_hosts_command()->set_generation(p.generation);
    *m.mutable_hosts_command()->mutable_hosts() = d.match;
    if (!SendToMonitor(m, p.conn.Get())) return;
  }
  if (!d.allow || (d.twist && !external)) return;
  if (external) {
    if (!Admitted(*s, p.service, std::move(p.conn), p.peer, &d.match)) UpdatePolling(*s, p.service);
  } else {
    StartInternal(*s, std::move(p.conn), p.peer);
  }
}

// The sender of the datagram at the head of the queue; false if none.
bool Loop::PeekPeer(const Svc& s, sockaddr_storage* peer) {
  socklen_t len = sizeof *peer;
  char byte;
  return recvfrom(s.sock.Get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT,
                  reinterpret_cast<sockaddr*>(peer), &len) >= 0;
}

// New hosts files: the /path lists they name are asked for first, and
// the policy in force stays until the set is whole.
void Loop::OnHosts(const wire::Hosts& h) {
  std::vector<std::string> missing = wrap_.Update(h);
  if (!missing.empty()) {
    wire::ToMonitor m;
    for (std::string& p : missing) m.mutable_read_lists()->add_paths(std::move(p));
    SendToMonitor(m);
    return;
  }
  for (uint32_t id = 0; id < svcs_.size(); ++id) UpdatePolling(svcs_[id], id);
}

void Loop::AcceptInternal(Svc& s, uint32_t id) {
  for (int i = 0; i < kAcceptsPerTurn; ++i) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    UniqueFd c(accept4(s.sock.Get(), reinterpret_cast<sockaddr*>(&peer), &len,
                       SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!c.Valid()) break;
    if (s.wrapped) Wrap(s, id, std::move(c), peer);
    else StartInternal(s, std::move(c), peer);
  }
}

void Loop::StartInternal(Svc& s, UniqueFd c, const sockaddr_storage& peer) {
  // FreeBSD applies the per-IP rate to internal stream services too; they
  // fork no child, so per-IP children and -R do not apply.
  PerIpTable::Ticket none;
  if (!AdmitPeer(s, peer, NowMs(), 0, &none)) return;
  if (conns_.size() >= kMaxInternalConns) {
    Log(LOG_WARNING, "%s/%s: too many internal connections; closing one",
        s.conf.name().c_str(), s.conf.proto().c_str());
    return;
  }
  ++s.accepted;
  if (options_.log_connections())
    Log(LOG_INFO, "%s/%s from %s", s.conf.name().c_str(), s.conf.proto().c_str(),
        TextOf(peer).text);
  std::unique_ptr<Conn> conn = s.builtin->configured != nullptr
                                   ? s.builtin->configured(std::move(c), s.conf)
                                   : s.builtin->stream(std::move(c));  // cppcheck-suppress accessMoved ; one arm runs
  if (!conn || !conn->OnStart()) return;
  int64_t now = NowMs();
  uint64_t key = kConnTag | next_conn_++;
  epoll_event ev{};
  ev.events = conn->Interest();
  ev.data.u64 = key;
  if (epoll_ctl(ep_.Get(), EPOLL_CTL_ADD, conn->fd(), &ev) < 0) return;
  int life = conn->LifetimeMs();
  conns_[key] = ConnState{std::move(conn), now + kIdleTimeoutMs, life > 0 ? now + life : INT64_MAX,
                          ev.events};
}

void Loop::OnService(uint32_t id) {
  Svc& s = svcs_[id];
  sockaddr_storage peer{};
  if (s.looping) {
    Drain(s);
  } else if (s.builtin != nullptr) {
    if (s.conf.type() == wire::DGRAM) {
      for (int i = 0; i < kAcceptsPerTurn && !s.parked; ++i) {
        if (!s.wrapped) {
          if (!s.builtin->dgram(s.sock.Get())) break;
        } else if (PeekPeer(s, &peer)) {
          Wrap(s, id, UniqueFd(), peer);
        } else {
          break;
        }
      }
    } else if (s.builtin->stream != nullptr || s.builtin->configured != nullptr) {
      AcceptInternal(s, id);
    }
  } else if (s.accepts) {
    AcceptExternal(s, id);
  } else if (s.wrapped && s.conf.type() == wire::DGRAM) {
    // FreeBSD checks the sender of a wrapped dgram service's first datagram.
    if (PeekPeer(s, &peer)) Wrap(s, id, UniqueFd(), peer);
  } else {
    AskReadable(s, id);
  }
  UpdatePolling(s, id);
}

// A wait (or dgram) service: the monitor hands the child its own socket.
// Only -R applies: the listener never sees the peer (FreeBSD alike).
void Loop::AskReadable(Svc& s, uint32_t id) {
  if (!Invoke(s, id, NowMs())) return;
  wire::ToMonitor m;
  m.mutable_readable()->set_service(id);
  m.mutable_readable()->set_generation(generation_);
  if (!SendToMonitor(m)) return;
  pending_.push_back(Pending{id, generation_, PerIpTable::kNoTicket});
  s.waiting = true;
  ++s.running;
}

void Loop::OnConn(uint64_t key, uint32_t events) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  Conn& c = *it->second.conn;
  if (!c.OnEvent(events)) {
    int64_t to = c.HandoffTo();
    epoll_ctl(ep_.Get(), EPOLL_CTL_DEL, c.fd(), nullptr);
    if (to >= 0) Handoff(static_cast<uint32_t>(to), c.TakeFd());
    conns_.erase(it);
    return;
  }
  // The clock as of the last tick, plus a tick: never less than a minute,
  // and no clock read for each event.
  it->second.idle_deadline = tick_ms_ + kTickMs + kIdleTimeoutMs;
  epoll_event ev{};
  ev.events = c.Interest();
  ev.data.u64 = key;
  // An echo round trip leaves the interest as it was: no system call then.
  if (ev.events != it->second.interest && epoll_ctl(ep_.Get(), EPOLL_CTL_MOD, c.fd(), &ev) == 0)
    it->second.interest = ev.events;
}

void Loop::CloseConn(uint64_t key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  epoll_ctl(ep_.Get(), EPOLL_CTL_DEL, it->second.conn->fd(), nullptr);
  conns_.erase(it);
}

void Loop::Expire(int64_t now) {
  for (const WrapDecision& d : wrap_.Expire(now)) Resume(d);
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (now >= it->second.idle_deadline || now >= it->second.life_deadline) {
      epoll_ctl(ep_.Get(), EPOLL_CTL_DEL, it->second.conn->fd(), nullptr);
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
  for (uint32_t id = 0; id < svcs_.size(); ++id) {
    Svc& s = svcs_[id];
    if (s.resume_at != 0 && now >= s.resume_at) {
      s.resume_at = 0;
      UpdatePolling(s, id);
    }
    if (s.looping && !s.invocations.Terminated(now)) {
      s.looping = false;
      Log(LOG_NOTICE, "%s/%s: back in service after the looping pause (%llu dropped meanwhile)",
          s.conf.name().c_str(), s.conf.proto().c_str(), static_cast<unsigned long long>(s.dropped));
      UpdatePolling(s, id);
    }
  }
  if (now - evictions_logged_at_ >= kRateWindowMs) {
    if (uint64_t n = per_ip_.TakeEvictions(); n > 0) {
      Log(LOG_WARNING, "per-IP table full (%zu entries): %llu least recently seen forgotten",
          per_ip_.size(), static_cast<unsigned long long>(n));
      evictions_logged_at_ = now;
    }
  }
}

int Loop::Run() {
  tick_ms_ = NowMs();
  wire::ToMonitor hello;
  hello.mutable_hello()->set_version(1);
  if (!SendToMonitor(hello)) return 1;
  epoll_event evs[64];
  while (!done_) {
    // No timeout: the tick wakes us every second. A timeout of epoll_wait's
    // own is a kernel timer armed and cancelled at every sleep, ~800
    // instructions a wake-up (tests/bench/README.md, echo).
    int n = epoll_wait(ep_.Get(), evs, 64, -1);
    if (n < 0 && errno != EINTR) {
      Log(LOG_ERR, "epoll_wait: %s", strerrordesc_np(errno));
      return 1;
    }
    reconfigured_ = false;
    bool ticked = false;
    // Events after a new table refer to the old ids: drop them, epoll is
    // level-triggered and reports the new sockets again.
    for (int i = 0; i < n && !done_ && !reconfigured_; ++i) {
      uint64_t key = evs[i].data.u64;
      if (key == kControlKey) {
        OnMonitor();
      } else if (key == kResolverKey) {
        for (const WrapDecision& d : wrap_.OnResolver(NowMs())) Resume(d);
      } else if (key == kTickKey) {
        uint64_t expirations = 0;
        ticked = read(tick_.Get(), &expirations, sizeof expirations) > 0;
        if (ticked) tick_ms_ = NowMs();
      } else if ((key & kTagMask) == kServiceTag) {
        const auto id = static_cast<uint32_t>(key & ~kTagMask);
        if (id < svcs_.size()) OnService(id);
      } else {
        OnConn(key, evs[i].events);
      }
    }
    if (ticked) Expire(tick_ms_);
  }
  return 0;
}

}  // namespace inetd::listener
