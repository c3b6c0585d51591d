// The listener's event loop: epoll over the listening sockets, the control
// channel and internal connections. Runs unprivileged under seccomp.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "listener/builtin.h"
#include "listener/limits.h"
#include "listener/wrap.h"
#include "proto/fd.h"
#include "proto/inetd.pb.h"

namespace inetd::listener {

// The loop's tick (limits, pauses, idle connections): a timerfd firing
// every second, set once, so it keeps firing with no further system call.
// Made before the filter (timerfd_* is not in the policy); invalid on error.
UniqueFd MakeTick();

class Loop {
 public:
  // `control`: the channel to the monitor; `ep`: an epoll fd and `tick` a
  // timerfd firing every second, both made before the sandbox closed
  // (neither epoll_create nor timerfd_* is in the policy).
  // `resolver`: the resolver's channel (resolver.h), or invalid.
  Loop(int control, UniqueFd ep, UniqueFd tick, UniqueFd resolver = UniqueFd());
  // Runs until the monitor goes away. Returns the exit status.
  int Run();

 private:
  struct Svc {
    wire::Service conf;
    UniqueFd sock;
    const Builtin* builtin = nullptr;
    bool accepts = false;   // the listener accepts (nowait stream/seqpacket, internal)
    bool polled = false;    // in epoll with EPOLLIN now
    bool waiting = false;   // handed to the monitor: paused until it answers
    uint32_t running = 0;   // children running or asked for
    int64_t resume_at = 0;  // paused after a refusal until then (ms)
    uint64_t accepted = 0;  // connections accepted (SIGUSR1 status)
    uint32_t ip_key = 0;          // its name in per_ip_ (kept across reloads)
    InvocationRate invocations;   // -R
    bool looping = false;         // terminated by -R: drained until the pause ends
    uint64_t dropped = 0;         // connections or datagrams drained meanwhile
    bool at_max = false;          // at max-child now
    bool wrapped = false;         // -w/-W apply (Wrapper::Wraps)
    bool parked = false;          // its head datagram waits for a hosts_access decision
    int64_t max_logged_at = INT64_MIN / 2;
  };
  // A Spawn or Readable the monitor has not answered yet.
  struct Pending {
    uint32_t service;
    uint64_t generation;
    PerIpTable::Ticket ticket;  // the per-IP child slot it holds
  };
  struct ConnState {
    std::unique_ptr<Conn> conn;
    int64_t idle_deadline;
    int64_t life_deadline;
    uint32_t interest;  // the events epoll has for it: changed only when they differ
  };

  void OnMonitor();
  void Apply(const wire::Config& c, std::vector<UniqueFd>& fds);
  void OnService(uint32_t id);
  void AcceptExternal(Svc& s, uint32_t id);
  bool SpawnFor(Svc& s, uint32_t id, UniqueFd c, const sockaddr_storage& peer);
  void Handoff(uint32_t id, UniqueFd c);
  void AcceptInternal(Svc& s, uint32_t id);
  void StartInternal(Svc& s, UniqueFd c, const sockaddr_storage& peer);
  void AskReadable(Svc& s, uint32_t id);
  bool Admitted(Svc& s, uint32_t id, UniqueFd c, const sockaddr_storage& peer,
                const wire::HostsMatch* match);
  // hosts_access (wrap.h): a connection or datagram waiting for its decision.
  struct Parked {
    uint32_t service;
    uint64_t generation;
    UniqueFd conn;  // invalid: the datagram at the head of the service's queue
    sockaddr_storage peer;
  };
  void Wrap(Svc& s, uint32_t id, UniqueFd c, const sockaddr_storage& peer);
  void Resume(const WrapDecision& d);
  void Decided(const WrapDecision& d, Parked p);
  static bool PeekPeer(const Svc& s, sockaddr_storage* peer);
  void OnHosts(const wire::Hosts& h);
  bool AdmitPeer(const Svc& s, const sockaddr_storage& peer, int64_t now, uint32_t per_child,
                 PerIpTable::Ticket* ticket);
  bool Invoke(Svc& s, uint32_t id, int64_t now);
  static void Drain(Svc& s);
  PerIpTable::Ticket TakePending(uint32_t service, uint64_t generation);
  void OnConn(uint64_t key, uint32_t events);
  void CloseConn(uint64_t key);
  void UpdatePolling(Svc& s, uint32_t id);
  void Expire(int64_t now);
  Svc* Current(uint32_t id, uint64_t generation);
  bool SendToMonitor(const wire::ToMonitor& m, int fd = -1);

  int control_;
  UniqueFd ep_;
  UniqueFd tick_;
  int64_t tick_ms_ = 0;  // NowMs() at the last tick
  uint64_t generation_ = 0;
  wire::Options options_;
  std::vector<Svc> svcs_;
  std::unordered_map<uint64_t, ConnState> conns_;
  uint64_t next_conn_ = 1;
  bool done_ = false;
  bool reconfigured_ = false;  // a Config arrived in this batch of events
  PerIpTable per_ip_;
  Wrapper wrap_;
  std::unordered_map<uint64_t, Parked> parked_;  // by WrapDecision::ticket
  std::deque<Pending> pending_;  // in the order sent: the monitor answers in order
  int64_t evictions_logged_at_ = INT64_MIN / 2;
};

}  // namespace inetd::listener
