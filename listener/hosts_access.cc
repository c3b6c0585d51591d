// The hosts_access decision, in the listener, per connection: a walk over
// precompiled rules, comparisons only. No lookups, no allocation beyond a
// few short strings, no recursion (EXCEPT chains are evaluated in a loop,
// /path lists were flattened at load).
//
// Names are evaluated lazily, in libwrap's order: the first pattern that
// would consult a name (or the ident user) that the request does not have
// yet stops the walk with kNeedLookup. Since everything before that point
// did not depend on the name, calling again with the answer gives exactly
// the decision libwrap would have made after doing the lookup there.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "listener/hosts_access.h"

namespace inetd::listener {

using hosts_detail::HostPat;
using hosts_detail::List;
using hosts_detail::RuleCode;
using hosts_detail::Segment;
using hosts_detail::StrPat;
using hosts_detail::Token;

HostAddr HostAddr::V4(uint32_t host_order) {
  HostAddr a;
  a.family = Family::kV4;
  a.v4 = host_order;
  return a;
}

HostAddr HostAddr::FromSockaddr(const sockaddr* sa, socklen_t len) {
  HostAddr a;
  if (sa == nullptr) return a;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return V4(ntohl(in->sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    // A v4 client of a dual-stack socket is a v4 client to the rules.
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      uint32_t v;
      std::memcpy(&v, in6->sin6_addr.s6_addr + 12, 4);
      a = V4(ntohl(v));
      a.v4_mapped = true;
      return a;
    }
    a.family = Family::kV6;
    std::memcpy(a.v6.data(), in6->sin6_addr.s6_addr, 16);
  }
  return a;
}

std::optional<HostAddr> HostAddr::Parse(std::string_view text) {
  if (text.size() > 64) return std::nullopt;
  std::string z(text);
  in_addr a4{};
  if (inet_pton(AF_INET, z.c_str(), &a4) == 1) return V4(ntohl(a4.s_addr));
  sockaddr_in6 s6{};
  s6.sin6_family = AF_INET6;
  if (inet_pton(AF_INET6, z.c_str(), &s6.sin6_addr) == 1)
    return FromSockaddr(reinterpret_cast<const sockaddr*>(&s6), sizeof s6);
  return std::nullopt;
}

std::string HostAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (family == Family::kV4) {
    in_addr a{htonl(v4)};
    if (inet_ntop(AF_INET, &a, buf, sizeof buf)) return (v4_mapped ? "::ffff:" : "") + std::string(buf);
  } else if (family == Family::kV6) {
    if (inet_ntop(AF_INET6, v6.data(), buf, sizeof buf)) return buf;
  }
  return "unknown";
}

namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// '*' and '?' over lower-cased text; iterative, backtracking only to the
// last '*', so linear in practice and never recursive.
bool Glob(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++pi;
      ++si;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

// libwrap's string_match; `s` is lower-cased like the pattern.
bool StrMatch(const StrPat& p, std::string_view s) {
  switch (p.kind) {
    case StrPat::Kind::kWild: return Glob(p.text, s);
    case StrPat::Kind::kSuffix: return s.size() > p.text.size() && s.ends_with(p.text);
    case StrPat::Kind::kAll: return true;
    case StrPat::Kind::kKnown: return s != "unknown";
    case StrPat::Kind::kPrefix: return s.starts_with(p.text);
    case StrPat::Kind::kExact: return s == p.text;
  }
  return false;
}

// Sanitized as libwrap does, then lower-cased for the case-insensitive
// comparisons.
std::string Subject(std::string_view s) {
  std::string out = SanitizeName(s);
  for (char& c : out) c = Lower(c);
  return out;
}

}  // namespace

// One decision; a friend of HostsPolicy.
class HostsMatcher {
 public:
  HostsMatcher(const HostsPolicy& p, const HostsRequest& r)
      : p_(p),
        r_(r),
        client_(&r.client, kNeedClientName),
        server_(&r.server, kNeedServerName),
        daemon_(r.daemon.empty() ? std::string("unknown") : Subject(r.daemon)) {}

  HostsVerdict Run();

 private:
  enum class Tri : uint8_t { kNo, kYes, kNeed };

  // What the rules see of one end of the connection, made on first use.
  struct Side {
    Side(const HostsEndpoint* e, uint8_t bit) : e(e), need_bit(bit) {
      for (int i = 0; i < 8; ++i) {
        v6_hi = (v6_hi << 8) | e->addr.v6[i];
        v6_lo = (v6_lo << 8) | e->addr.v6[i + 8];
      }
    }
    const HostsEndpoint* e;
    uint8_t need_bit;
    uint64_t v6_hi = 0, v6_lo = 0;   // the address, for [net]/prefix
    std::vector<uint8_t> lists;      // per /path list: 0 not yet, 1 no, 2 yes
    bool have_addr = false, have_name = false;
    std::string addr, name;
  };

  Tri EvalList(const List& l, bool daemons);
  Tri SimpleDaemons(const List& l);
  Tri SimpleClients(const List& l) const;
  bool V6Match(const HostPat& h, const Side& s) const;
  Tri EvalToken(const Token& t, bool daemons);
  Tri EvalHost(const HostPat& h, Side& s);
  static const std::string& Addr(Side& s);
  // nullptr when the name is not looked up yet (need_ is then set).
  const std::string* Name(Side& s);
  // Whether daemon pattern strs_[i] matches this request's daemon, each
  // distinct pattern compared once per decision.
  bool DaemonMatch(uint32_t i) {
    if (daemon_cache_.empty()) daemon_cache_.assign(p_.strs_.size(), 0);
    uint8_t& c = daemon_cache_[i];
    if (c == 0) c = StrMatch(p_.strs_[i], daemon_) ? 2 : 1;
    return c == 2;
  }
  static bool NameKnown(const std::string& n) { return n != "unknown" && n != "paranoid"; }

  const HostsPolicy& p_;
  const HostsRequest& r_;
  Side client_, server_;
  std::string daemon_;
  std::vector<uint8_t> daemon_cache_;   // 0 not yet, 1 no, 2 yes
  std::string user_;
  bool have_user_ = false;
  uint8_t need_ = kNeedNothing;
};

const std::string& HostsMatcher::Addr(Side& s) {
  if (!s.have_addr) {
    // The text patterns see: inet_ntop's (lower case), a v4-mapped client
    // as plain IPv4 (Debian matches "1.2.3.*" against ::ffff:1.2.3.4).
    HostAddr a = s.e->addr;
    a.v4_mapped = false;
    s.addr = a.ToString();
    s.have_addr = true;
  }
  return s.addr;
}

const std::string* HostsMatcher::Name(Side& s) {
  if (!s.have_name) {
    switch (s.e->name_state) {
      case Lookup::kNotDone:
        need_ = s.need_bit;
        return nullptr;
      case Lookup::kFound:
        s.name = s.e->name.empty() ? std::string("unknown") : Subject(s.e->name);
        break;
      case Lookup::kParanoid:
        s.name = "paranoid";
        break;
      case Lookup::kFailed:
        s.name = "unknown";
        break;
    }
    s.have_name = true;
  }
  return &s.name;
}

// NOLINTNEXTLINE(misc-no-recursion): one level only, a flattened list holds no kList
HostsMatcher::Tri HostsMatcher::EvalHost(const HostPat& h, Side& s) {
  const HostAddr& a = s.e->addr;
  switch (h.kind) {
    case HostPat::Kind::kNone:  // (no host part: not reached)
    case HostPat::Kind::kNever:
      return Tri::kNo;
    case HostPat::Kind::kV4Net:
      if (a.family != HostAddr::Family::kV4) return Tri::kNo;
      // libwrap's dot_quad_addr cannot tell 255.255.255.255 from an error.
      if (h.masked && a.v4 == 0xffffffffu) return Tri::kNo;
      return (a.v4 & h.b) == h.a ? Tri::kYes : Tri::kNo;
    case HostPat::Kind::kV6Net:
      return a.family == HostAddr::Family::kV6 && V6Match(h, s) ? Tri::kYes : Tri::kNo;
    case HostPat::Kind::kKnown: {
      // Both the address and the name must be known; the address first, so
      // an unknown address needs no lookup.
      if (a.family == HostAddr::Family::kUnknown) return Tri::kNo;
      const std::string* n = Name(s);
      if (!n) return Tri::kNeed;
      return NameKnown(*n) ? Tri::kYes : Tri::kNo;
    }
    case HostPat::Kind::kLocal: {
      const std::string* n = Name(s);
      if (!n) return Tri::kNeed;
      return NameKnown(*n) && n->find('.') == std::string::npos ? Tri::kYes : Tri::kNo;
    }
    case HostPat::Kind::kNetgroup: {
      const std::string* n = Name(s);
      if (!n) return Tri::kNeed;
      if (s.e->name_state != Lookup::kFound || !NameKnown(*n)) return Tri::kNo;
      return (s.e->netgroups >> h.a) & 1 ? Tri::kYes : Tri::kNo;
    }
    case HostPat::Kind::kList: {
      // A list's answer for this endpoint, once per decision however many
      // rules name it (a list can hold thousands of patterns).
      if (s.lists.empty()) s.lists.assign(p_.lists_.size(), 0);
      uint8_t& c = s.lists[h.a];
      if (c != 0) return c == 2 ? Tri::kYes : Tri::kNo;
      for (const HostPat& q : p_.lists_[h.a].patterns) {
        Tri t = EvalHost(q, s);  // depth 1: flattened lists hold no kList
        if (t == Tri::kNeed) return t;
        if (t == Tri::kYes) {
          c = 2;
          return t;
        }
      }
      c = 1;
      return Tri::kNo;
    }
    case HostPat::Kind::kString: {
      const StrPat& str = p_.strs_[h.a];
      if (StrMatch(str, Addr(s))) return Tri::kYes;
      if (!h.not_inaddr) return Tri::kNo;
      const std::string* n = Name(s);
      if (!n) return Tri::kNeed;
      return StrMatch(str, *n) ? Tri::kYes : Tri::kNo;
    }
  }
  return Tri::kNo;
}

HostsMatcher::Tri HostsMatcher::EvalToken(const Token& t, bool daemons) {
  if (daemons) {
    // daemon, or daemon@host: the daemon first, then the server endpoint.
    if (t.str_kind != StrPat::Kind::kAll && !DaemonMatch(t.str)) return Tri::kNo;
    return t.host.kind != HostPat::Kind::kNone ? EvalHost(t.host, server_) : Tri::kYes;
  }
  // host, or user@host: the host first, so the ident lookup is done only
  // for hosts that match (libwrap's rule-driven lookups).
  Tri h = EvalHost(t.host, client_);
  if (h != Tri::kYes || !t.has_str) return h;
  if (!have_user_) {
    if (r_.user_state == Lookup::kNotDone) {
      need_ = kNeedUser;
      return Tri::kNeed;
    }
    user_ = r_.user_state == Lookup::kFound && !r_.user.empty() ? Subject(r_.user) : std::string("unknown");
    have_user_ = true;
  }
  return StrMatch(p_.strs_[t.str], user_) ? Tri::kYes : Tri::kNo;
}

// The same answers EvalList gives for these shapes, without its
// generality; `l` indexes tokens_ here.
inline HostsMatcher::Tri HostsMatcher::SimpleDaemons(const List& l) {
  for (uint32_t i = l.begin; i < l.end; ++i) {
    const Token& t = p_.tokens_[i];
    if (t.str_kind == StrPat::Kind::kAll || DaemonMatch(t.str)) return Tri::kYes;
  }
  return Tri::kNo;
}

inline HostsMatcher::Tri HostsMatcher::SimpleClients(const List& l) const {
  const HostAddr& a = r_.client.addr;
  for (uint32_t i = l.begin; i < l.end; ++i) {
    const HostPat& h = p_.tokens_[i].host;
    if (h.kind == HostPat::Kind::kV4Net) {
      if (a.family == HostAddr::Family::kV4 && (a.v4 & h.b) == h.a && !(h.masked && a.v4 == 0xffffffffu))
        return Tri::kYes;
    } else if (h.kind == HostPat::Kind::kV6Net) {
      if (a.family == HostAddr::Family::kV6 && V6Match(h, client_)) return Tri::kYes;
    }
  }
  return Tri::kNo;
}

inline bool HostsMatcher::V6Match(const HostPat& h, const Side& s) const {
  const hosts_detail::V6Net& n = p_.v6_[h.a];
  return (s.v6_hi & n.mask_hi) == n.hi && (s.v6_lo & n.mask_lo) == n.lo;
}

HostsMatcher::Tri HostsMatcher::EvalList(const List& l, bool daemons) {
  // "s0 EXCEPT s1 EXCEPT s2" means s0 && !(s1 && !s2). Walking the levels,
  // the list's value is level k's value, negated when k is odd: so stop at
  // the first level that does not match, or at the last level.
  for (uint32_t k = l.begin; k < l.end; ++k) {
    const Segment& seg = p_.segments_[k];
    Tri m = Tri::kNo;
    for (uint32_t i = seg.begin; i < seg.end && m == Tri::kNo; ++i) m = EvalToken(p_.tokens_[i], daemons);
    if (m == Tri::kNeed) return m;
    const bool odd = ((k - l.begin) & 1) != 0;
    if (m == Tri::kNo) return odd ? Tri::kYes : Tri::kNo;
    if (k + 1 == l.end) return odd ? Tri::kNo : Tri::kYes;
  }
  return Tri::kNo;
}

HostsVerdict HostsMatcher::Run() {
  HostsVerdict v;
  for (size_t i = 0; i < p_.code_.size(); ++i) {
    const RuleCode& code = p_.code_[i];
    if (code.broken) {
      // The end of a file that could not be read: nothing more of
      // hosts.allow (its sentinel is its last entry); hosts.deny denies.
      if (p_.rules_[i].table == HostsTable::kAllow) continue;
      v.kind = HostsVerdict::Kind::kDeny;
      v.rule = &p_.rules_[i];
      return v;
    }
    Tri d = code.simple_daemons ? SimpleDaemons(code.daemons) : EvalList(code.daemons, true);
    if (d == Tri::kNo) continue;
    Tri c = d;
    if (d == Tri::kYes) c = code.simple_clients ? SimpleClients(code.clients) : EvalList(code.clients, false);
    if (c == Tri::kNo) continue;
    if (c == Tri::kNeed) {
      v.kind = HostsVerdict::Kind::kNeedLookup;
      v.need = need_;
      return v;
    }
    const HostsRule& rule = p_.rules_[i];
    v.rule = &rule;
    v.kind = rule.table == HostsTable::kAllow ? HostsVerdict::Kind::kAllow : HostsVerdict::Kind::kDeny;
    // NOLINTNEXTLINE(bugprone-branch-clone): the order decides; bad options deny even with allow
    if (rule.bad_options) {
      v.kind = HostsVerdict::Kind::kDeny;
    } else if (rule.HasOption(HostsOptionKind::kAllow)) {
      v.kind = HostsVerdict::Kind::kAllow;
    } else if (rule.HasOption(HostsOptionKind::kDeny)) {
      v.kind = HostsVerdict::Kind::kDeny;
    }
    return v;
  }
  return v;  // no rule matched: allow
}

HostsVerdict HostsPolicy::Check(const HostsRequest& req) const {
  return HostsMatcher(*this, req).Run();
}

}  // namespace inetd::listener
