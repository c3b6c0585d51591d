// hosts_access(5) for the event loop (see wrap.h).
#include "listener/wrap.h"

#include <netinet/in.h>
#include <syslog.h>

#include <cstring>

#include "proto/channel.h"
#include "proto/log.h"

namespace inetd::listener {
namespace {

// libwrap has no bound of its own on DNS; ident's default is its 10 s.
constexpr int64_t kNameTimeoutMs = 5000;
constexpr int64_t kUserTimeoutMs = 10000;
// Decisions waiting for names, all services together; past this a
// connection that needs a name is refused (and logged).
constexpr size_t kMaxParked = 1024;

uint16_t PortOf(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return 0;
}

HostsText TextOf(const wire::HostsFile& f) { return HostsText{f.path(), f.present(), f.text()}; }

std::string Bytes(const HostAddr& a) {
  if (a.family == HostAddr::Family::kV4) {
    uint32_t n = htonl(a.v4);
    return {reinterpret_cast<const char*>(&n), 4};
  }
  return {reinterpret_cast<const char*>(a.v6.data()), 16};
}

}  // namespace

bool Wrapper::Wraps(const wire::Options& o, const wire::Service& s) {
  if (!(s.builtin().empty() ? o.wrap_external() : o.wrap_internal())) return false;
  if (s.proto().rfind("unix", 0) == 0) return false;
  return s.type() == wire::DGRAM || (s.type() == wire::STREAM && (!s.wait() || !s.builtin().empty()));
}

std::vector<std::string> Wrapper::Update(const wire::Hosts& h) {
  HostsLists lists;
  for (const wire::HostsFile& l : h.lists())
    lists[l.path()] = l.present() && !l.unreadable() ? std::optional<std::string>(l.text())
                                                      : std::nullopt;
  HostsPolicy next = HostsPolicy::Compile(TextOf(h.allow()), TextOf(h.deny()), lists);
  if (!next.MissingLists().empty()) return next.MissingLists();
  for (const HostsError& e : next.errors()) Log(LOG_WARNING, "%s", e.ToString().c_str());
  for (const wire::HostsFile& l : h.lists())
    if (l.unreadable())
      Log(LOG_WARNING, "%s: cannot be read (%s): it matches nothing", l.path().c_str(),
          l.error().c_str());
  closed_.clear();
  for (const wire::HostsFile* f : {&h.allow(), &h.deny()})
    if (f->unreadable()) closed_ = f->path() + " cannot be read";
  policy_ = std::move(next);
  ready_ = true;
  return {};
}

WrapDecision Wrapper::Decide(const wire::Service& s, const sockaddr_storage& peer,
                             const sockaddr_storage& local, bool log_allowed, int64_t now) {
  uint64_t ticket = next_ticket_++;
  Case& c = cases_[ticket];
  c.daemon = s.daemon();
  c.proto = s.proto();
  c.log_allowed = log_allowed;
  c.req.daemon = c.daemon;
  c.req.client.addr = HostAddr::FromSockaddr(reinterpret_cast<const sockaddr*>(&peer), sizeof peer);
  c.req.client.port = PortOf(peer);
  c.req.server.addr = HostAddr::FromSockaddr(reinterpret_cast<const sockaddr*>(&local), sizeof local);
  c.req.server.port = PortOf(local);
  WrapDecision d;
  d.ticket = ticket;
  if (Run(ticket, c, now, &d)) {
    cases_.erase(ticket);
  } else if (cases_.size() > kMaxParked) {
    Log(LOG_WARNING, "refused connection from %s, service %s (%s): %zu name lookups in progress",
        c.req.client.addr.ToString().c_str(), c.daemon.c_str(), c.proto.c_str(), kMaxParked);
    cases_.erase(ticket);
    d = WrapDecision{};
  }
  return d;
}

namespace {

// The names a matched rule's options use: its %-sequences (libwrap looks a
// name up when it expands %h, %n, %c or %u) and `rfc931`.
uint8_t OptionNeeds(const HostsRule* rule) {
  uint8_t need = 0;
  if (rule == nullptr || rule->bad_options) return need;
  for (const HostsOption& o : rule->options) {
    if (o.kind == HostsOptionKind::kRfc931) need |= kNeedUser;
    if (o.kind != HostsOptionKind::kSpawn && o.kind != HostsOptionKind::kTwist &&
        o.kind != HostsOptionKind::kSetenv)
      continue;
    for (size_t i = 0; i + 1 < o.value.size(); ++i)
      if (o.value[i] == '%') {
        char k = o.value[++i];
        if (k == 'h' || k == 'n' || k == 'c') need |= kNeedClientName;
        if (k == 'u' || k == 'c') need |= kNeedUser;
      }
  }
  return need;
}

}  // namespace

// Check; on kNeedLookup, or for a name the matched rule's options use, ask
// the resolver for that one name. Without a resolver, or if it cannot be
// asked, the name is unknown at once.
bool Wrapper::Run(uint64_t ticket, Case& c, int64_t now, WrapDecision* out) {
  for (int round = 0; round < 6; ++round) {
    HostsVerdict v = policy_.Check(c.req);
    uint8_t need = v.need;
    if (v.kind != HostsVerdict::Kind::kNeedLookup) {
      need = OptionNeeds(v.rule);
      if (c.req.client.name_state != Lookup::kNotDone) need &= ~kNeedClientName;
      if (c.req.user_state != Lookup::kNotDone) need &= ~kNeedUser;
      need &= (need & kNeedClientName) ? kNeedClientName : kNeedUser;  // one at a time
      if (need == 0) {
        Finish(c, v, out);
        return true;
      }
    }
    c.asked = need;
    ++c.round;
    wire::LookupRequest q;
    q.set_id(ticket << 8 | c.round);
    const HostsEndpoint& host = need == kNeedServerName ? c.req.server : c.req.client;
    q.set_kind(need == kNeedUser ? wire::LookupRequest::USER : wire::LookupRequest::HOST_NAME);
    q.set_addr(Bytes(host.addr));
    q.set_port(c.req.client.port);
    q.set_local_addr(Bytes(c.req.server.addr));
    q.set_local_port(c.req.server.port);
    int64_t timeout = need == kNeedUser ? kUserTimeoutMs : kNameTimeoutMs;
    if (need != kNeedUser)
      for (const std::string& g : policy_.netgroups()) q.add_netgroups(g);
    q.set_timeout_ms(static_cast<uint32_t>(timeout));
    if (resolver_.Valid() && host.addr.family != HostAddr::Family::kUnknown &&
        wire::SendFrame(resolver_.Get(), q, {}, MSG_DONTWAIT)) {
      c.deadline = now + timeout + 1000;  // the resolver answers by `timeout`
      out->pending = true;
      return false;
    }
    if (need & kNeedClientName) c.req.client.name_state = Lookup::kFailed;
    if (need & kNeedServerName) c.req.server.name_state = Lookup::kFailed;
    if (need & kNeedUser) c.req.user_state = Lookup::kFailed;
  }
  Finish(c, HostsVerdict{HostsVerdict::Kind::kDeny}, out);
  return true;
}

void Wrapper::Finish(Case& c, const HostsVerdict& v, WrapDecision* out) const {
  out->pending = false;
  out->allow = v.kind == HostsVerdict::Kind::kAllow && closed_.empty();
  int severity = LOG_AUTH | (out->allow ? LOG_INFO : LOG_WARNING);
  if (v.rule != nullptr) {
    out->match.set_deny_file(v.rule->table == HostsTable::kDeny);
    out->match.set_line(static_cast<uint32_t>(v.rule->line));
    if (!v.rule->bad_options)
      for (const HostsOption& o : v.rule->options) {
        if (o.kind == HostsOptionKind::kSeverity)
          severity = (o.facility >= 0 ? o.facility : LOG_AUTH) | o.number;
        // These the monitor does, from its own copy of the rule.
        out->spawn = out->spawn || o.kind == HostsOptionKind::kSpawn ||
                     o.kind == HostsOptionKind::kBanners;
        out->twist = out->twist || o.kind == HostsOptionKind::kTwist;
      }
  }
  if (c.req.client.name_state == Lookup::kFound) out->match.set_client_name(c.name);
  if (c.req.user_state == Lookup::kFound) out->match.set_user(c.user);
  if (out->allow && !c.log_allowed) return;
  // libwrap's eval_client: user@host when the user is known; the host's
  // name when known, else its address.
  std::string client = c.req.client.name_state == Lookup::kFound ? c.name
                                                                   : c.req.client.addr.ToString();
  if (c.req.user_state == Lookup::kFound) client = c.user + "@" + client;
  Log(severity, "%sconnection from %s, service %s (%s)%s%s", out->allow ? "" : "refused ",
      client.c_str(), c.daemon.c_str(), c.proto.c_str(), closed_.empty() ? "" : ": ",
      closed_.c_str());
}

std::vector<WrapDecision> Wrapper::OnResolver(int64_t now) {
  std::vector<WrapDecision> done;
  for (int i = 0; i < 64 && resolver_.Valid(); ++i) {
    Result<wire::Frame> frame = wire::RecvFrame(resolver_.Get(), wire::kMaxRequest, 0, MSG_DONTWAIT);
    if (!frame) {
      if (frame.error().code != EAGAIN) {
        Log(LOG_ERR, "resolver gone: every name is unknown from now on");
        resolver_.Reset();
      }
      break;
    }
    wire::LookupReply r;
    if (!wire::Decode(*frame, r)) continue;
    auto it = cases_.find(r.id() >> 8);
    // Finished by Expire meanwhile, or an answer to an earlier question.
    if (it == cases_.end() || (r.id() & 0xff) != it->second.round) continue;
    Case& c = it->second;
    Lookup state = r.state() == wire::LookupReply::FOUND      ? Lookup::kFound
                   : r.state() == wire::LookupReply::PARANOID ? Lookup::kParanoid
                                                              : Lookup::kFailed;
    if (c.asked == kNeedUser) {
      c.user = r.name().substr(0, 256);
      c.req.user_state = state == Lookup::kParanoid ? Lookup::kFailed : state;
      c.req.user = c.user;
    } else {
      HostsEndpoint& e = c.asked == kNeedServerName ? c.req.server : c.req.client;
      c.name = r.name().substr(0, 256);
      e.name_state = state;
      e.name = c.name;
      e.netgroups = r.netgroups();
    }
    WrapDecision d;
    d.ticket = it->first;
    if (Run(it->first, c, now, &d)) {
      done.push_back(std::move(d));
      cases_.erase(it);
    }
  }
  return done;
}

std::vector<WrapDecision> Wrapper::Expire(int64_t now) {
  std::vector<WrapDecision> done;
  for (auto it = cases_.begin(); it != cases_.end();) {
    Case& c = it->second;
    if (now < c.deadline) {
      ++it;
      continue;
    }
    if (c.asked & kNeedClientName) c.req.client.name_state = Lookup::kFailed;
    if (c.asked & kNeedServerName) c.req.server.name_state = Lookup::kFailed;
    if (c.asked & kNeedUser) c.req.user_state = Lookup::kFailed;
    WrapDecision d;
    d.ticket = it->first;
    if (Run(it->first, c, now, &d)) {
      done.push_back(std::move(d));
      it = cases_.erase(it);
    } else {
      ++it;
    }
  }
  return done;
}

}  // namespace inetd::listener
