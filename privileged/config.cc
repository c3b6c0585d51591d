// inetd.conf(5) parser: turns the configuration text into the monitor's
// service table. Runs in the monitor (root) at start and on SIGHUP. The text
// comes from a file root owns, never from the network, but is still checked
// field by field: a bad entry becomes one ConfigError and is skipped. Users,
// groups, services and host names are resolved here, so the spawner needs no
// lookup between fork and exec.
#include "privileged/config.h"

#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstddef>
#include <cstring>
#include <map>
#include <utility>

#include "proto/fd.h"
#include "proto/log.h"

namespace inetd::priv {
namespace {

constexpr size_t kMaxArgs = 20;                 // FreeBSD's MAXARGV
constexpr unsigned long kMaxChild = 32767;      // FreeBSD's MAX_MAXCHLD
constexpr unsigned long kMaxId = 0xfffffffeUL;  // (uid_t)-1 means "no change"
constexpr size_t kMaxFile = 4 << 20;            // LoadConfig refuses bigger files

struct Fail {
  std::string field, message;
};
using MaybeFail = std::optional<Fail>;

struct ProtoInfo {
  std::string_view name;
  int ipproto;  // 0 for unix
  int family;   // AF_UNSPEC: plain tcp/udp, an explicit address decides (default IPv4)
  bool dual;    // tcp46/udp46: one IPv6 socket that also accepts IPv4
};
constexpr ProtoInfo kProtos[] = {
    {"tcp", IPPROTO_TCP, AF_UNSPEC, false},
    {"tcp4", IPPROTO_TCP, AF_INET, false},
    {"tcp6", IPPROTO_TCP, AF_INET6, false},
    {"tcp46", IPPROTO_TCP, AF_INET6, true},
    {"udp", IPPROTO_UDP, AF_UNSPEC, false},
    {"udp4", IPPROTO_UDP, AF_INET, false},
    {"udp6", IPPROTO_UDP, AF_INET6, false},
    {"udp46", IPPROTO_UDP, AF_INET6, true},
    {"unix", 0, AF_UNIX, false},
};

// "raw" is refused (see ParseEntry); "rdm" does not exist on Linux.
constexpr std::pair<std::string_view, SockType> kTypes[] = {{"stream", SockType::kStream},
                                                            {"dgram", SockType::kDgram},
                                                            {"seqpacket", SockType::kSeqpacket}};

// The built-ins the listener serves, by their /etc/services name.
struct BuiltinInfo {
  std::string_view name;
  bool stream, dgram;
};
constexpr BuiltinInfo kBuiltins[] = {
    {"echo", true, true}, {"discard", true, true}, {"chargen", true, true}, {"daytime", true, true},
    {"time", true, true}, {"auth", true, false},   {"tcpmux", true, false},
};

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// A field's text for an error message: quoted, and cut short so that a huge
// field cannot flood the log.
std::string Q(std::string_view s) {
  return "\"" + std::string(s.substr(0, 64)) + (s.size() > 64 ? "...\"" : "\"");
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (size_t at = s.find(sep); at != std::string_view::npos; at = s.find(sep)) {
    out.push_back(s.substr(0, at));
    s.remove_prefix(at + 1);
  }
  out.push_back(s);
  return out;
}

// A plain unsigned number, nothing before or after it, at most `max`.
std::optional<unsigned long> Number(std::string_view s, unsigned long max, int base = 10) {
  unsigned long v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || end != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

// Splits an entry into fields at runs of blanks. As in FreeBSD's inetd, a
// field that starts with a double or single quote runs to the matching quote,
// blanks included. False on an unterminated quote.
bool Fields(std::string_view s, std::vector<std::string>& out) {
  size_t i = 0;
  for (;;) {
    while (i < s.size() && IsBlank(s[i])) ++i;
    if (i == s.size()) return true;
    if (s[i] == '"' || s[i] == '\'') {
      size_t end = s.find(s[i], i + 1);
      if (end == std::string_view::npos) return false;
      out.emplace_back(s.substr(i + 1, end - i - 1));
      i = end + 1;
    } else {
      size_t end = i;
      while (end < s.size() && !IsBlank(s[end])) ++end;
      out.emplace_back(s.substr(i, end - i));
      i = end;
    }
  }
}

std::optional<uid_t> FindUid(const std::string& name) {
  if (const passwd* pw = getpwnam(name.c_str())) return pw->pw_uid;
  if (auto n = Number(name, kMaxId)) return static_cast<uid_t>(*n);
  return std::nullopt;
}

std::optional<gid_t> FindGid(const std::string& name) {
  if (const group* gr = getgrnam(name.c_str())) return gr->gr_gid;
  if (auto n = Number(name, kMaxId)) return static_cast<gid_t>(*n);
  return std::nullopt;
}

// What initgroups() would set, resolved now: no NSS call after fork.
std::optional<std::vector<gid_t>> GroupList(const std::string& user, gid_t gid) {
  std::vector<gid_t> groups(32);
  for (int tries = 0; tries < 4; ++tries) {
    int n = static_cast<int>(groups.size());
    if (getgrouplist(user.c_str(), gid, groups.data(), &n) >= 0) {
      groups.resize(static_cast<size_t>(n));
      return groups;
    }
    if (n <= static_cast<int>(groups.size()) || n > 65536) break;
    groups.resize(static_cast<size_t>(n));  // glibc said how many there are
  }
  return std::nullopt;
}

// wait|nowait[/max-child[/max-connections-per-ip-per-minute[/max-child-per-ip]]]
MaybeFail ParseWait(std::string_view f, ServiceConfig& s) {
  // OpenBSD's "nowait.400" caps how often the whole service may start per
  // minute. There is no per-entry field for that here, and reading the number
  // as one of FreeBSD's limits would change its meaning: refuse it.
  if (size_t dot = f.find('.'); dot != std::string_view::npos)
    return Fail{"wait", "OpenBSD's " + Q(f) +
                            " (a per-minute start rate for this service) is not supported: write " +
                            Q(f.substr(0, dot)) + " and set the rate with -R"};
  std::vector<std::string_view> parts = Split(f, '/');
  if (parts[0] == "wait")
    s.wait = true;
  else if (parts[0] != "nowait")
    return Fail{"wait", "expected wait or nowait, not " + Q(f)};
  if (parts.size() > 4) return Fail{"wait", "too many limits in " + Q(f)};
  int* const limits[] = {&s.max_child, &s.per_ip_rate, &s.per_ip_child};
  const unsigned long max[] = {kMaxChild, INT_MAX, INT_MAX};
  const char* const names[] = {"max-child", "max-connections-per-ip-per-minute",
                               "max-child-per-ip"};
  for (size_t i = 1; i < parts.size(); ++i) {
    auto n = Number(parts[i], max[i - 1]);
    if (!n)
      return Fail{"wait", std::string("bad ") + names[i - 1] + " " + Q(parts[i]) + " (0 to " +
                              std::to_string(max[i - 1]) + ")"};
    *limits[i - 1] = static_cast<int>(*n);
  }
  return std::nullopt;
}

// user[:group][/login-class]; OpenBSD's user.group as an extension.
MaybeFail ParseUser(std::string_view f, ServiceConfig& s) {
  s.login_class = "daemon";
  if (size_t slash = f.rfind('/'); slash != std::string_view::npos) {
    s.login_class = f.substr(slash + 1);
    f = f.substr(0, slash);
    if (s.login_class.empty()) return Fail{"login-class", "empty login class after '/'"};
  }
  size_t sep = f.find(':');
  // "first.last" can be a user name: take '.' as OpenBSD's separator only when
  // there is no ':' and the whole field is not a user.
  if (sep == std::string_view::npos && (sep = f.rfind('.')) != std::string_view::npos &&
      getpwnam(std::string(f).c_str()) != nullptr)
    sep = std::string_view::npos;
  s.user = f.substr(0, sep);
  s.group = sep == std::string_view::npos ? "" : f.substr(sep + 1);
  if (s.user.empty()) return Fail{"user", "empty user name"};
  if (sep != std::string_view::npos && s.group.empty()) return Fail{"group", "empty group name"};

  // A number with no passwd entry is accepted, but then it has no primary
  // group and no group list: the group must be named.
  const passwd* pw = getpwnam(s.user.c_str());
  if (pw != nullptr) {
    s.uid = pw->pw_uid;
  } else {
    auto n = Number(s.user, kMaxId);
    if (!n) return Fail{"user", "unknown user " + Q(s.user)};
    s.uid = static_cast<uid_t>(*n);
    pw = getpwuid(s.uid);
  }
  const std::string pw_name = pw ? pw->pw_name : "";
  const gid_t pw_gid = pw ? pw->pw_gid : 0;
  if (!s.group.empty()) {
    auto gid = FindGid(s.group);
    if (!gid) return Fail{"group", "unknown group " + Q(s.group)};
    s.gid = *gid;
  } else if (pw != nullptr) {
    s.gid = pw_gid;
  } else {
    return Fail{"group", "user " + Q(s.user) + " has no passwd entry: name a group (user:group)"};
  }
  if (pw_name.empty()) {
    s.groups = {s.gid};
    return std::nullopt;
  }
  auto groups = GroupList(pw_name, s.gid);
  if (!groups) return Fail{"group", "cannot list the groups of " + Q(pw_name)};
  s.groups = std::move(*groups);
  return std::nullopt;
}

// A unix socket's service field: an absolute path, optionally behind
// FreeBSD's ":user:group:mode:" owner prefix.
MaybeFail ParseUnixPath(std::string_view f, ServiceConfig& s) {
  // FreeBSD's default: owned by inetd's user (root), mode 0200, so that only
  // root may connect until the entry says otherwise.
  s.sock_uid = geteuid();
  s.sock_gid = getegid();
  s.sock_mode = 0200;
  if (!f.empty() && f[0] == ':') {
    std::vector<std::string_view> p = Split(f.substr(1), ':');
    if (p.size() < 4) return Fail{"service", "expected :user:group:mode:/path, not " + Q(f)};
    auto uid = FindUid(std::string(p[0]));
    auto gid = FindGid(std::string(p[1]));
    auto mode = Number(p[2], 07777, 8);
    if (!uid) return Fail{"service", "unknown socket owner " + Q(p[0])};
    if (!gid) return Fail{"service", "unknown socket group " + Q(p[1])};
    if (!mode) return Fail{"service", "bad socket mode " + Q(p[2]) + " (octal, at most 7777)"};
    s.sock_uid = *uid;
    s.sock_gid = *gid;
    s.sock_mode = static_cast<mode_t>(*mode);
    f.remove_prefix(p[0].size() + p[1].size() + p[2].size() + 4);  // the path may hold ':'
  }
  sockaddr_un sun{};
  if (f.empty() || f[0] != '/')
    return Fail{"service", "a unix socket needs an absolute path, not " + Q(f)};
  if (f.size() >= sizeof sun.sun_path) return Fail{"service", "unix socket path too long: " + Q(f)};
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, f.data(), f.size());
  memcpy(&s.addr, &sun, sizeof sun);
  s.addrlen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + f.size() + 1);
  s.name = f;
  s.family = AF_UNIX;
  return std::nullopt;
}

// Port and official name of a service: a name in /etc/services, or (an
// extension) a port number.
std::optional<std::pair<uint16_t, std::string>> LookupService(const std::string& name,
                                                              const char* base) {
  if (const servent* se = getservbyname(name.c_str(), base))
    return std::pair{ntohs(static_cast<uint16_t>(se->s_port)), std::string(se->s_name)};
  auto n = Number(name, 65535);
  if (!n || *n == 0) return std::nullopt;
  const servent* se = getservbyport(htons(static_cast<uint16_t>(*n)), base);
  return std::pair{static_cast<uint16_t>(*n), std::string(se ? se->s_name : name)};
}

struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
};

void AddAddr(const sockaddr* sa, size_t len, uint16_t port, std::vector<Addr>& out) {
  Addr a;
  a.len = static_cast<socklen_t>(std::min(len, sizeof a.ss));
  memcpy(&a.ss, sa, a.len);
  if (a.ss.ss_family == AF_INET)
    reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(port);
  else
    reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(port);
  for (const Addr& b : out)  // the same address twice in one list binds once
    if (b.len == a.len && memcmp(&b.ss, &a.ss, a.len) == 0) return;
  out.push_back(a);
}

// The address of an entry that names none, or names "*": -a's, else the
// wildcard. As in FreeBSD, once -a is given only its families are served,
// and tcp46/udp46 fall back to IPv4 when -a gave no IPv6 address.
MaybeFail DefaultAddr(const ProtoInfo& p, const ParseOptions& o, uint16_t port,
                      std::vector<Addr>& out) {
  const bool a_given = o.bind4 || o.bind6;
  int family = p.family == AF_UNSPEC ? AF_INET : p.family;
  if (p.dual && a_given && !o.bind6) family = AF_INET;
  if (a_given && (family == AF_INET ? !o.bind4 : !o.bind6))
    return Fail{"protocol", std::string("-a gave no IPv") + (family == AF_INET ? "4" : "6") +
                                " address for " + std::string(p.name)};
  if (family == AF_INET) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr = o.bind4.value_or(in_addr{htonl(INADDR_ANY)});
    AddAddr(reinterpret_cast<const sockaddr*>(&sin), sizeof sin, port, out);
  } else {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr = o.bind6.value_or(in6addr_any);
    AddAddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6, port, out);
  }
  return std::nullopt;
}

// OpenBSD's host list: comma-separated IPv4 literals, [IPv6] or bare IPv6
// literals, host names, or "*". Plain tcp/udp bind whatever family the
// address has; tcp4/tcp6/tcp46 accept only their own family.
MaybeFail HostAddrs(std::string_view hosts, const ProtoInfo& p, const ParseOptions& o,
                    uint16_t port, std::vector<Addr>& out) {
  for (std::string_view h : Split(hosts, ',')) {
    if (h == "*") {
      if (auto e = DefaultAddr(p, o, port, out)) return e;
      continue;
    }
    const bool bracket = h.size() >= 2 && h.front() == '[' && h.back() == ']';
    const std::string host(bracket ? h.substr(1, h.size() - 2) : h);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;  // one result per address
    hints.ai_flags = AI_NUMERICHOST;
    hints.ai_family = bracket ? AF_INET6 : AF_UNSPEC;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0 && !bracket && o.resolve_hosts) {
      hints.ai_flags = 0;
      hints.ai_family = p.family;
      rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    }
    if (rc != 0) return Fail{"address", "cannot resolve " + Q(host) + ": " + gai_strerror(rc)};
    bool any = false;
    for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
          (p.family == AF_UNSPEC || ai->ai_family == p.family)) {
        AddAddr(ai->ai_addr, ai->ai_addrlen, port, out);
        any = true;
      }
    }
    freeaddrinfo(res);
    if (!any)
      return Fail{"address",
                  std::string(p.name) + " cannot bind " + Q(host) + " (wrong address family)"};
  }
  return std::nullopt;
}

bool Executable(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// One entry's fields to one ServiceConfig per socket (or one for a unix or
// tcpmux entry). `default_host` comes from the last bare "host:" line.
MaybeFail ParseEntry(const std::vector<std::string>& f, const std::string& default_host,
                     const ParseOptions& o, ServiceConfig& s, std::vector<ServiceConfig>& out) {
  static const char* const kFieldNames[] = {"service", "socket-type", "protocol",
                                            "wait",    "user",        "server-program"};
  if (f.size() < 6)
    return Fail{kFieldNames[f.size()], "missing (an entry has at least six fields)"};

  // The protocol first: it decides how the service field reads.
  if (f[2].starts_with("rpc/") || f[0].starts_with("rpc/"))
    return Fail{"protocol", "RPC services are not supported"};
  const ProtoInfo* p = nullptr;
  for (const ProtoInfo& cand : kProtos)
    if (cand.name == f[2]) p = &cand;
  if (p == nullptr) return Fail{"protocol", "unknown protocol " + Q(f[2])};
  s.proto = f[2];
  s.ipproto = p->ipproto;
  s.family = p->family == AF_UNSPEC ? AF_INET : p->family;

  // FreeBSD takes raw sockets with any IP protocol; they see every packet of
  // that protocol and have no port: refused. Linux has SOCK_SEQPACKET for
  // unix sockets but not for TCP or UDP.
  if (f[1] == "raw") return Fail{"socket-type", "raw sockets are not supported"};
  const auto* t = std::find_if(std::begin(kTypes), std::end(kTypes),
                               [&](const auto& c) { return c.first == f[1]; });
  if (t == std::end(kTypes)) return Fail{"socket-type", "unknown socket type " + Q(f[1])};
  s.type = t->second;
  if (p->family != AF_UNIX &&
      s.type != (p->ipproto == IPPROTO_TCP ? SockType::kStream : SockType::kDgram))
    return Fail{"socket-type", Q(f[1]) + " does not go with protocol " + Q(f[2])};

  if (auto e = ParseWait(f[3], s)) return e;
  if (auto e = ParseUser(f[4], s)) return e;

  std::string host = default_host, official;
  std::string_view svc = f[0];
  uint16_t port = 0;
  bool explicit_host = false;
  if (p->family == AF_UNIX) {
    if (auto e = ParseUnixPath(svc, s)) return e;
  } else {
    if (size_t c = svc.rfind(':'); c != std::string_view::npos) {
      host = svc.substr(0, c);
      svc.remove_prefix(c + 1);
      explicit_host = true;
      if (host.empty()) return Fail{"address", "empty address before ':'"};
    }
    if (svc.starts_with("tcpmux/")) {
      // RFC 1078 services: reached through the tcpmux built-in, no socket of
      // their own. FreeBSD silently runs them nowait, so do we.
      svc.remove_prefix(7);
      s.tcpmux = true;
      s.tcpmux_plus = svc.starts_with('+');
      if (s.tcpmux_plus) svc.remove_prefix(1);
      if (svc.empty()) return Fail{"service", "tcpmux entry without a name"};
      if (p->ipproto != IPPROTO_TCP) return Fail{"protocol", "tcpmux services need stream tcp"};
      if (explicit_host)
        return Fail{"address",
                    "tcpmux services have no socket: put the address on the tcpmux entry"};
      s.wait = false;
    } else {
      const char* base = p->ipproto == IPPROTO_TCP ? "tcp" : "udp";
      auto se = LookupService(std::string(svc), base);
      if (!se)
        return Fail{"service", "unknown service " + Q(svc) + " (not in /etc/services for " + base +
                                   ", not a port)"};
      port = se->first;
      official = se->second;
    }
    s.name = svc;
  }

  const std::string& prog = f[5];
  s.argv.assign(f.begin() + 6, f.end());
  if (s.argv.size() > kMaxArgs)
    return Fail{"server-program-arguments", "more than " + std::to_string(kMaxArgs) + " arguments"};
  if (prog == "internal") {
    // Matched by the official name, so aliases work ("ident" is "auth");
    // on a port no built-in owns, argv[0] names it ("7007 ... internal echo").
    const BuiltinInfo* b = nullptr;
    auto match = [&](std::string_view want) {
      for (const BuiltinInfo& c : kBuiltins)
        if (b == nullptr && c.name == want &&
            (s.type == SockType::kStream ? c.stream : s.type == SockType::kDgram && c.dgram))
          b = &c;
    };
    match(official);
    match(s.name);
    if (!s.argv.empty()) match(s.argv[0]);
    if (b == nullptr || s.tcpmux || p->family == AF_UNIX)
      return Fail{"server-program", "no internal " + f[1] + " service " + Q(f[0])};
    s.internal = true;
    s.builtin = b->name;
    s.wait = false;  // FreeBSD runs every built-in in nowait mode
  } else {
    if (prog.empty() || prog[0] != '/')
      return Fail{"server-program", Q(prog) + " is not an absolute path or \"internal\""};
    if (o.check_programs && !Executable(prog))
      return Fail{"server-program", Q(prog) + " is not an executable file"};
    s.program = prog;
    // FreeBSD would exec with an empty argv; programs expect argv[0].
    if (s.argv.empty()) s.argv.push_back(prog.substr(prog.rfind('/') + 1));
  }
  if (s.wait && s.max_child < 0) s.max_child = 1;  // FreeBSD: a wait service runs one child

  // Host names last: they may be the slowest lookup.
  if (s.tcpmux || s.family == AF_UNIX) {
    out.push_back(s);
    return std::nullopt;
  }
  std::vector<Addr> addrs;
  if (auto e = host.empty() ? DefaultAddr(*p, o, port, addrs) : HostAddrs(host, *p, o, port, addrs))
    return e;
  for (const Addr& a : addrs) {
    ServiceConfig c = s;
    c.addr = a.ss;
    c.addrlen = a.len;
    c.family = a.ss.ss_family;
    c.v6only = c.family == AF_INET6 && !p->dual;
    out.push_back(std::move(c));
  }
  return std::nullopt;
}

// What makes two entries collide: the address they bind (with port or path),
// socket type and protocol; for tcpmux services, the name.
std::string BindKey(const ServiceConfig& s) {
  if (s.tcpmux) {
    std::string k = "tcpmux/" + s.name;
    for (char& ch : k) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
    return k;
  }
  std::string k(reinterpret_cast<const char*>(&s.addr), s.addrlen);
  k += static_cast<char>(s.type);
  k += static_cast<char>(s.ipproto);
  return k;
}

class Parser {
 public:
  Parser(const std::string& file, const ParseOptions& opts) : file_(file), opts_(opts) {}

  // One logical entry (continuation lines joined) that starts at `line`.
  void Entry(std::string_view text, int line) {
    // A NUL would cut a name short at the C library: refuse it.
    std::vector<std::string> f;
    if (text.find('\0') != std::string_view::npos) return Error(line, "entry", "NUL byte");
    if (!Fields(text, f)) return Error(line, "entry", "unterminated quote");
    // OpenBSD: a bare "host:" line sets the address of the entries after it.
    if (f.size() == 1 && f[0].size() > 1 && f[0].back() == ':') {
      default_host_ = f[0].substr(0, f[0].size() - 1);
      return;
    }
    ServiceConfig s;
    s.file = file_;
    s.line = line;
    std::vector<ServiceConfig> socks;
    if (auto e = ParseEntry(f, default_host_, opts_, s, socks))
      return Error(line, e->field, e->message);
    for (const ServiceConfig& c : socks)
      if (auto it = bound_.find(BindKey(c)); it != bound_.end())
        return Error(line, "service",
                     "same socket as the entry at line " + std::to_string(it->second));
    for (ServiceConfig& c : socks) {
      bound_.emplace(BindKey(c), line);
      cfg_.services.push_back(std::move(c));
    }
  }

  Config Take() { return std::move(cfg_); }

 private:
  void Error(int line, std::string field, std::string message) {
    cfg_.errors.push_back(ConfigError{file_, line, std::move(field), std::move(message)});
  }

  const std::string& file_;
  const ParseOptions& opts_;
  Config cfg_;
  std::string default_host_;
  std::map<std::string, int> bound_;  // BindKey -> line of the entry that has it
};

}  // namespace

std::string ConfigError::ToString() const {
  return file + ":" + std::to_string(line) + ": " + field + ": " + message;
}

Config ParseConfig(std::string_view text, const std::string& file, const ParseOptions& opts) {
  Parser parser(file, opts);
  std::string entry;
  int entry_line = 0, line_no = 0;
  auto flush = [&] {
    if (!entry.empty()) parser.Entry(entry, entry_line);
    entry.clear();
  };
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // A '#' in the first column (Debian's "#<off>#" and "#:LABEL:" too) or an
    // empty line ends an entry. A line that starts with a blank continues
    // it, as in FreeBSD, unless it holds only blanks or a comment.
    if (line.empty() || line[0] == '#') {
      flush();
      continue;
    }
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    if (IsBlank(line[0]) && !entry.empty()) {
      entry += ' ';
      entry += line;
      continue;
    }
    flush();
    entry = line;
    entry_line = line_no;
  }
  flush();
  return parser.Take();
}

std::optional<Config> LoadConfig(const std::string& path, const ParseOptions& opts) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.Valid()) {
    Log(LOG_ERR, "%s: %m", path.c_str());
    return std::nullopt;
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd.Get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Log(LOG_ERR, "%s: %m", path.c_str());
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFile) {
      Log(LOG_ERR, "%s: larger than %zu bytes, refused", path.c_str(), kMaxFile);
      return std::nullopt;
    }
  }
  return ParseConfig(text, path, opts);
}

bool ResolveBindAddress(const std::string& host, ParseOptions& opts) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return false;
  opts.bind4.reset();
  opts.bind6.reset();
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET && !opts.bind4)
      opts.bind4 = reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr;
    if (ai->ai_family == AF_INET6 && !opts.bind6)
      opts.bind6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr;
  }
  freeaddrinfo(res);
  return opts.bind4 || opts.bind6;
}

std::string ServiceLabel(const ServiceConfig& s) {
  if (s.tcpmux) return std::string("tcpmux/") + (s.tcpmux_plus ? "+" : "") + s.name + "/" + s.proto;
  return s.name + "/" + s.proto;
}

bool SameSocket(const ServiceConfig& a, const ServiceConfig& b) {
  if (a.tcpmux || b.tcpmux) return false;  // they have no socket
  return BindKey(a) == BindKey(b) && a.v6only == b.v6only &&
         (a.family != AF_UNIX ||
          (a.sock_uid == b.sock_uid && a.sock_gid == b.sock_gid && a.sock_mode == b.sock_mode));
}

}  // namespace inetd::priv
