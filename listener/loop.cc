// The listener's event loop (see loop.h). Everything here handles network
// input or the monitor's answers; nothing here is trusted by the monitor.
#include "listener/loop.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include <cstring>

#include "proto/channel.h"
#include "proto/log.h"

namespace inetd::listener {
namespace {

// epoll keys: the control channel, a service (by id), a connection (by key).
constexpr uint64_t kControlKey = 0;
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

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

Loop::Loop(int control, UniqueFd ep) : control_(control), ep_(std::move(ep)) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kControlKey;
  epoll_ctl(ep_.Get(), EPOLL_CTL_ADD, control_, &ev);
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
  bool full = s.conf.max_child() > 0 && s.running >= s.conf.max_child();
  bool want = !s.waiting && s.resume_at == 0 && !(s.builtin == nullptr && full);
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
  if (static_cast<size_t>(c.services_size()) != fds.size()) {
    Log(LOG_ERR, "config with %d services but %zu sockets", c.services_size(), fds.size());
    done_ = true;
    return;
  }
  // The monitor holds the same open files: closing ours would leave them in
  // the epoll set, firing with stale ids. Remove them first.
  for (Svc& old : svcs_) epoll_ctl(ep_.Get(), EPOLL_CTL_DEL, old.sock.Get(), nullptr);
  svcs_.clear();
  reconfigured_ = true;
  generation_ = c.generation();
  options_ = c.options();
  SetLogDebug(options_.debug());
  svcs_.resize(fds.size());
  for (uint32_t id = 0; id < svcs_.size(); ++id) {
    Svc& s = svcs_[id];
    s.conf = c.services(id);
    s.sock = std::move(fds[id]);
    s.running = s.conf.running();
    if (!s.conf.builtin().empty()) {
      s.builtin = FindBuiltin(s.conf.builtin());
      if (s.builtin == nullptr) Log(LOG_ERR, "%s: unknown internal service", s.conf.name().c_str());
    }
    bool connectionful = s.conf.type() == wire::STREAM || s.conf.type() == wire::SEQPACKET;
    s.accepts = s.builtin != nullptr || (connectionful && !s.conf.wait());
    // A wait service with a child still running stays paused until Exited.
    s.waiting = !s.accepts && s.running > 0;
    epoll_event ev{};
    ev.events = 0;
    ev.data.u64 = kServiceTag | id;
    epoll_ctl(ep_.Get(), EPOLL_CTL_ADD, s.sock.Get(), &ev);
    UpdatePolling(s, id);
  }
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
      if (Svc* s = Current(m.spawned().service(), m.spawned().generation())) {
        // A nowait dgram service is polled again once its child runs.
        if (!s->accepts && !s->conf.wait()) s->waiting = false;
        UpdatePolling(*s, m.spawned().service());
      }
      break;
    case wire::ToListener::kRefused:
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
      if (Svc* s = Current(m.exited().service(), m.exited().generation())) {
        if (s->running > 0) --s->running;
        if (s->conf.wait()) s->waiting = false;
        UpdatePolling(*s, m.exited().service());
      }
      break;
    case wire::ToListener::kStatus:
      for (const Svc& s : svcs_)
        Log(LOG_INFO, "status: %s/%s: %s, running %u, accepted %llu, internal connections %zu",
            s.conf.name().c_str(), s.conf.proto().c_str(),
            s.polled ? "polling" : (s.waiting ? "waiting for its child" : "paused"), s.running,
            static_cast<unsigned long long>(s.accepted), s.builtin ? conns_.size() : 0);
      break;
    default:
      Log(LOG_ERR, "unknown message from the monitor");
      done_ = true;
  }
}

// nowait stream: accept, and hand the connection to the monitor to spawn.
void Loop::AcceptExternal(Svc& s, uint32_t id) {
  for (int i = 0; i < kAcceptsPerTurn; ++i) {
    if (s.conf.max_child() > 0 && s.running >= s.conf.max_child()) break;
    UniqueFd c(accept4(s.sock.Get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c.Valid()) break;
    wire::ToMonitor m;
    m.mutable_spawn()->set_service(id);
    m.mutable_spawn()->set_generation(generation_);
    if (!SendToMonitor(m, c.Get())) return;
    ++s.running;
    ++s.accepted;
  }
}

void Loop::AcceptInternal(Svc& s) {
  for (int i = 0; i < kAcceptsPerTurn; ++i) {
    UniqueFd c(accept4(s.sock.Get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!c.Valid()) break;
    if (conns_.size() >= kMaxInternalConns) {
      Log(LOG_WARNING, "%s/%s: too many internal connections; closing one",
          s.conf.name().c_str(), s.conf.proto().c_str());
      continue;
    }
    ++s.accepted;
    std::unique_ptr<Conn> conn = s.builtin->stream(std::move(c));
    if (!conn || !conn->OnStart()) continue;
    int64_t now = NowMs();
    uint64_t key = kConnTag | next_conn_++;
    epoll_event ev{};
    ev.events = conn->Interest();
    ev.data.u64 = key;
    if (epoll_ctl(ep_.Get(), EPOLL_CTL_ADD, conn->fd(), &ev) < 0) continue;
    int life = conn->LifetimeMs();
    conns_[key] = ConnState{std::move(conn), now + kIdleTimeoutMs,
                            life > 0 ? now + life : INT64_MAX};
  }
}

void Loop::OnService(uint32_t id) {
  Svc& s = svcs_[id];
  if (s.builtin != nullptr) {
    if (s.conf.type() == wire::DGRAM) {
      for (int i = 0; i < kAcceptsPerTurn && s.builtin->dgram(s.sock.Get()); ++i) {
      }
    } else if (s.builtin->stream != nullptr) {
      AcceptInternal(s);
    }
  } else if (s.accepts) {
    AcceptExternal(s, id);
  } else {
    // wait (or dgram) service: the monitor hands the child its own socket.
    wire::ToMonitor m;
    m.mutable_readable()->set_service(id);
    m.mutable_readable()->set_generation(generation_);
    if (!SendToMonitor(m)) return;
    s.waiting = true;
    ++s.running;
  }
  UpdatePolling(s, id);
}

void Loop::OnConn(uint64_t key, uint32_t events) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  Conn& c = *it->second.conn;
  if (!c.OnEvent(events)) {
    CloseConn(key);
    return;
  }
  it->second.idle_deadline = NowMs() + kIdleTimeoutMs;
  epoll_event ev{};
  ev.events = c.Interest();
  ev.data.u64 = key;
  epoll_ctl(ep_.Get(), EPOLL_CTL_MOD, c.fd(), &ev);
}

void Loop::CloseConn(uint64_t key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  epoll_ctl(ep_.Get(), EPOLL_CTL_DEL, it->second.conn->fd(), nullptr);
  conns_.erase(it);
}

void Loop::Expire(int64_t now) {
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (now >= it->second.idle_deadline || now >= it->second.life_deadline) {
      epoll_ctl(ep_.Get(), EPOLL_CTL_DEL, it->second.conn->fd(), nullptr);
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
  for (uint32_t id = 0; id < svcs_.size(); ++id) {
    if (svcs_[id].resume_at != 0 && now >= svcs_[id].resume_at) {
      svcs_[id].resume_at = 0;
      UpdatePolling(svcs_[id], id);
    }
  }
}

int Loop::Run() {
  wire::ToMonitor hello;
  hello.mutable_hello()->set_version(1);
  if (!SendToMonitor(hello)) return 1;
  int64_t next_expiry = NowMs() + 1000;
  epoll_event evs[64];
  while (!done_) {
    int n = epoll_wait(ep_.Get(), evs, 64, 1000);
    if (n < 0 && errno != EINTR) {
      Log(LOG_ERR, "epoll_wait: %s", strerrordesc_np(errno));
      return 1;
    }
    reconfigured_ = false;
    // Events after a new table refer to the old ids: drop them, epoll is
    // level-triggered and reports the new sockets again.
    for (int i = 0; i < n && !done_ && !reconfigured_; ++i) {
      uint64_t key = evs[i].data.u64;
      if (key == kControlKey) {
        OnMonitor();
      } else if ((key & kTagMask) == kServiceTag) {
        uint32_t id = static_cast<uint32_t>(key & ~kTagMask);
        if (id < svcs_.size()) OnService(id);
      } else {
        OnConn(key, evs[i].events);
      }
    }
    int64_t now = NowMs();
    if (now >= next_expiry) {
      Expire(now);
      next_expiry = now + 1000;
    }
  }
  return 0;
}

}  // namespace inetd::listener
