// -w and -W: hosts_access(5) decisions for the event loop, over the files the
// monitor read and pushed (wire::Hosts). Which services are wrapped follows
// FreeBSD: stream nowait and dgram services on IPv4 or IPv6, external ones
// with -w, internal ones with -W; stream wait services and unix sockets never.
//
// A decision that needs a name (host name, netgroup, RFC 1413 user) is
// parked: the resolver process (resolver.h) is asked, and the decision
// finishes when it answers or its time is up ("unknown", as libwrap).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "listener/hosts_access.h"
#include "proto/fd.h"
#include "proto/inetd.pb.h"

namespace inetd::listener {

// What the loop acts on. `pending`: parked under `ticket`; the same ticket
// comes back finished from OnResolver or Expire.
struct WrapDecision {
  bool pending = false;
  uint64_t ticket = 0;
  bool allow = false;
  bool spawn = false;   // the rule has spawn commands: the monitor runs them
  bool twist = false;   // the rule replaces the service: the monitor runs it
  wire::HostsMatch match;  // the rule (if any) and the names looked up
};

class Wrapper {
 public:
  // `resolver`: the channel to the resolver, or invalid (every name unknown).
  void SetResolver(UniqueFd resolver) { resolver_ = std::move(resolver); }
  int resolver_fd() const { return resolver_.Get(); }

  // A new set of files. Returns the /path lists they name that `h` lacks: the
  // caller asks the monitor for them, and the policy in force stays until a
  // set without gaps arrives.
  std::vector<std::string> Update(const wire::Hosts& h);
  // A complete set has arrived: before that, wrapped services wait.
  bool Ready() const { return ready_; }

  static bool Wraps(const wire::Options& o, const wire::Service& s);

  // Starts the decision for one connection or datagram of `s`, logged as
  // FreeBSD's inetd logs it once made: refusals always (auth.warning, or
  // the rule's `severity`), allowed ones with `log_allowed` (-l).
  WrapDecision Decide(const wire::Service& s, const sockaddr_storage& peer,
                      const sockaddr_storage& local, bool log_allowed, int64_t now);
  // The resolver has answers: the decisions they finish.
  std::vector<WrapDecision> OnResolver(int64_t now);
  // Parked decisions past their time finish with the name unknown.
  std::vector<WrapDecision> Expire(int64_t now);
  size_t parked() const { return cases_.size(); }

 private:
  struct Case {
    std::string daemon, proto;
    bool log_allowed = false;
    HostsRequest req;          // its views point into name/user below
    std::string name, user;
    uint8_t asked = 0;         // the HostsNeed being looked up
    uint8_t round = 0;         // questions asked: LookupRequest.id = ticket << 8 | round
    int64_t deadline = 0;
  };
  // Runs the rules; finishes `c` or asks for the next name (false).
  bool Run(uint64_t ticket, Case& c, int64_t now, WrapDecision* out);
  void Finish(Case& c, const HostsVerdict& v, WrapDecision* out) const;

  HostsPolicy policy_;
  bool ready_ = false;
  std::string closed_;  // non-empty: a file could not be read; refuse all, saying this
  UniqueFd resolver_;
  std::unordered_map<uint64_t, Case> cases_;  // by ticket (= lookup id)
  uint64_t next_ticket_ = 1;
};

}  // namespace inetd::listener
