// Reading hosts.allow / hosts.deny into compiled rules, in the listener.
// Input is administrator text pushed by the monitor, but it is still parsed
// as hostile: every line, token and nesting level is bounded, and nothing
// here can fail other than by reporting an error and carrying on the way
// libwrap does. Addresses, masks and prefixes are parsed once, here, so that
// a decision is comparisons only.
//
// The behaviour follows Debian's tcp_wrappers 7.6 (checked against its
// tcpdmatch by tests/unit/tcpdmatch_diff_test.py), including its quirks:
// the mask of `n.n.n.n/m` is not applied to `n`, `/0` is no IPv4 prefix,
// `[ipv6]/0` is, wildcards win over `.suffix` and `prefix.`, and so on.
#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "listener/hosts_access.h"

namespace inetd::listener {

using hosts_detail::HostList;
using hosts_detail::HostPat;
using hosts_detail::List;
using hosts_detail::Segment;
using hosts_detail::StrPat;
using hosts_detail::Token;

namespace {

// libwrap splits lists with strtok(", \t\r\n").
constexpr std::string_view kListSeparators = ", \t\r\n";
// Blank lines, and option fields, are trimmed of these (libwrap's chop_string).
constexpr std::string_view kBlanks = " \t\r\n";
// A /path list is read with fscanf("%s"): isspace() separates.
constexpr std::string_view kListFileSpace = " \t\n\v\f\r";
// Tokens read from /path lists for one policy (nested lists count each time
// they are named): beyond this, lists are cut short.
constexpr size_t kMaxListPatterns = 1 << 16;

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (Lower(a[i]) != Lower(b[i])) return false;
  return true;
}

// libwrap's split_at with Debian's IPv6 patch: the first `delim` outside
// [brackets]. Brackets are counted, not matched: a stray ']' makes the depth
// negative and hides every later delimiter, exactly as there.
size_t SplitAt(std::string_view s, char delim) {
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[') {
      ++depth;
    } else if (s[i] == ']') {
      --depth;
    } else if (depth == 0 && s[i] == delim) {
      return i;
    }
  }
  return std::string_view::npos;
}

// Calls f(token) for each token of `s` separated by any of `seps`.
template <typename F>
// NOLINTNEXTLINE(misc-no-recursion): lists nest at most kHostsMaxListDepth deep
void ForEachToken(std::string_view s, std::string_view seps, F f) {
  size_t i = 0;
  while (true) {
    i = s.find_first_not_of(seps, i);
    if (i == std::string_view::npos) return;
    size_t e = s.find_first_of(seps, i);
    if (e == std::string_view::npos) e = s.size();
    f(s.substr(i, e - i));
    i = e;
  }
}

// libwrap's dot_quad_addr: exactly four runs of non-dots, then inet_addr
// (which takes octal and hex parts, and refuses 255.255.255.255 as its error
// value). The real inet_aton is used so that its leniency is reproduced too.
std::optional<uint32_t> DotQuad(std::string_view s) {
  int runs = 0;
  bool in_run = false;
  for (char c : s) {
    if (c == '.') {
      in_run = false;
    } else if (!in_run) {
      in_run = true;
      ++runs;
    }
  }
  if (runs != 4 || s.size() > 64 || s.find('\0') != std::string_view::npos) return std::nullopt;
  std::string z(s);
  in_addr a{};
  if (inet_aton(z.c_str(), &a) == 0) return std::nullopt;
  uint32_t v = ntohl(a.s_addr);
  if (v == 0xffffffffu) return std::nullopt;
  return v;
}

// atoi(), which libwrap uses for prefix lengths: leading blanks, a sign,
// decimal digits, anything after ignored, long overflow clamped, then cut to
// int.
int Atoi(std::string_view s) {
  std::string z(s.substr(0, 64));
  if (z.find('\0') != std::string::npos) z.resize(z.find('\0'));
  return static_cast<int>(std::strtol(z.c_str(), nullptr, 10));
}

std::optional<std::array<uint8_t, 16>> ParseV6(std::string_view s) {
  if (s.size() > 64 || s.find('\0') != std::string_view::npos) return std::nullopt;
  std::string z(s);
  std::array<uint8_t, 16> a{};
  if (inet_pton(AF_INET6, z.c_str(), a.data()) != 1) return std::nullopt;
  return a;
}

// "[v6]" → the address inside; anything else (trailing junk too) → nullopt.
std::optional<std::array<uint8_t, 16>> Bracketed(std::string_view s) {
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return std::nullopt;
  return ParseV6(s.substr(1, s.size() - 2));
}

// `s` as a canonical dotted quad (what inet_ntop prints), so that comparing
// the address text with it is the same as comparing numbers.
std::optional<uint32_t> CanonicalV4(std::string_view s) {
  if (s.size() > 15) return std::nullopt;
  std::string z(s);
  in_addr a{};
  if (inet_pton(AF_INET, z.c_str(), &a) != 1) return std::nullopt;
  char back[INET_ADDRSTRLEN];
  if (inet_ntop(AF_INET, &a, back, sizeof back) == nullptr || z != back) return std::nullopt;
  return ntohl(a.s_addr);
}

// `s` as one to three canonical octets each followed by '.': the text
// prefix "192.168." is then the numeric prefix 192.168.0.0/16.
bool CanonicalV4Prefix(std::string_view s, uint32_t* net, uint32_t* mask) {
  uint32_t n = 0;
  int octets = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t dot = s.find('.', i);
    if (dot == std::string_view::npos || dot == i || dot - i > 3) return false;
    std::string_view part = s.substr(i, dot - i);
    if (part.size() > 1 && part[0] == '0') return false;
    unsigned v = 0;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 255 || ++octets > 3) return false;
    n = (n << 8) | v;
    i = dot + 1;
  }
  if (octets == 0) return false;
  *mask = ~0u << (32 - 8 * octets);
  *net = n << (32 - 8 * octets);
  return true;
}

// libwrap's NOT_INADDR: the token has a character other than digits, '.'
// and '/', so it may be a host name as well as an address.
bool NotInaddr(std::string_view s) {
  return s.find_first_not_of("0123456789./") != std::string_view::npos;
}

StrPat CompileStr(std::string_view tok) {
  // Debian's order: wildcards first, so ".f*" is a pattern, not a suffix.
  StrPat p;
  p.text = LowerCopy(tok);
  if (tok.find_first_of("*?") != std::string_view::npos) {
    p.kind = StrPat::Kind::kWild;
  } else if (!tok.empty() && tok[0] == '.') {
    p.kind = StrPat::Kind::kSuffix;
  } else if (EqualsNoCase(tok, "ALL")) {
    p.kind = StrPat::Kind::kAll;
  } else if (EqualsNoCase(tok, "KNOWN")) {
    p.kind = StrPat::Kind::kKnown;
  } else if (!tok.empty() && tok.back() == '.') {
    p.kind = StrPat::Kind::kPrefix;
  } else {
    p.kind = StrPat::Kind::kExact;
  }
  return p;
}

}  // namespace

// Builds a HostsPolicy; a friend of it. One instance per Compile call.
class HostsCompiler {
 public:
  HostsCompiler(HostsPolicy* p, const HostsLists& lists) : p_(p), lists_in_(lists) {}

  void ReadFile(const HostsText& f, HostsTable table);
  void Finish();

 private:
  void Error(int line, std::string msg) {
    p_->errors_.push_back(HostsError{std::string(path_), line, std::move(msg)});
  }
  void ParseRule(std::string_view content, int first, int last, HostsTable table);
  void Broken(int line, HostsTable table, const std::string& msg);
  List CompileList(std::string_view text, bool daemons);
  bool SimpleDaemons(List l) const {
    if (l.end - l.begin != 1) return false;
    const Segment& d = p_->segments_[l.begin];
    for (uint32_t i = d.begin; i < d.end; ++i)
      if (p_->tokens_[i].host.kind != HostPat::Kind::kNone) return false;
    return true;
  }
  List TokenRange(List l) const {
    const Segment& seg = p_->segments_[l.begin];
    return List{seg.begin, seg.end};
  }
  bool SimpleClients(List l) const {
    if (l.end - l.begin != 1) return false;
    const Segment& k = p_->segments_[l.begin];
    for (uint32_t i = k.begin; i < k.end; ++i) {
      const Token& t = p_->tokens_[i];
      if (t.has_str || (t.host.kind != HostPat::Kind::kV4Net && t.host.kind != HostPat::Kind::kV6Net &&
                        t.host.kind != HostPat::Kind::kNever))
        return false;
    }
    return true;
  }
  // Daemon and user patterns, each distinct one once: the matcher caches a
  // daemon pattern's answer per decision, so "sshd" in 1,000 rules is
  // compared once.
  uint32_t AddStr(std::string_view tok) {
    StrPat p = CompileStr(tok);
    auto it = str_index_.find(p.text);
    if (it != str_index_.end()) return it->second;
    auto i = static_cast<uint32_t>(p_->strs_.size());
    str_index_.emplace(p.text, i);
    p_->strs_.push_back(std::move(p));
    return i;
  }
  // Debian compares only the first `prefix` bits of both sides.
  uint32_t AddV6(const std::array<uint8_t, 16>& a, int prefix) {
    hosts_detail::V6Net n;
    for (int i = 0; i < 8; ++i) {
      n.hi = (n.hi << 8) | a[i];
      n.lo = (n.lo << 8) | a[i + 8];
    }
    n.mask_hi = prefix >= 64 ? ~0ULL : prefix <= 0 ? 0 : ~0ULL << (64 - prefix);
    n.mask_lo = prefix >= 128 ? ~0ULL : prefix <= 64 ? 0 : ~0ULL << (128 - prefix);
    n.hi &= n.mask_hi;
    n.lo &= n.mask_lo;
    p_->v6_.push_back(n);
    return static_cast<uint32_t>(p_->v6_.size() - 1);
  }
  HostPat CompileHost(std::string_view tok, bool server, int depth);
  HostPat CompileMask(std::string_view net, std::string_view mask);
  uint32_t AddList(std::string_view path, bool server, int depth);
  void FlattenList(std::string_view path, bool server, int depth, std::vector<HostPat>* out);
  static uint8_t NameNeed(bool server) { return server ? kNeedServerName : kNeedClientName; }

  HostsPolicy* p_;
  const HostsLists& lists_in_;
  // Where messages point: the hosts file, and the rule being compiled.
  std::string_view path_;
  int line_ = 0;
  std::map<std::string, uint32_t, std::less<>> list_index_;  // path → lists_
  std::map<std::string, uint32_t, std::less<>> str_index_;   // text → strs_
  std::set<std::string, std::less<>> missing_;
  size_t list_work_ = 0;   // tokens read from lists, over the whole policy
};

void HostsCompiler::ReadFile(const HostsText& f, HostsTable table) {
  if (!f.present) return;  // a missing file is an empty file
  path_ = f.path;
  std::string_view text = f.text;
  std::string content;
  size_t pos = 0;
  int phys = 0;
  while (pos < text.size()) {
    const int first = phys + 1;
    content.clear();
    while (true) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) {
        // An unterminated last line: see Broken().
        Broken(phys + 1, table, "missing newline at end of file");
        return;
      }
      ++phys;
      std::string_view seg = text.substr(pos, nl - pos);
      pos = nl + 1;
      if (seg.find('\0') != std::string_view::npos) {
        Broken(phys, table, "NUL byte in line");
        return;
      }
      // libwrap reads a logical line into a 2048-byte buffer; what does not
      // fit ends the file.
      if (content.size() + seg.size() > kHostsMaxLine) {
        Broken(phys, table, "line too long");
        return;
      }
      if (!seg.empty() && seg.back() == '\\') {
        content.append(seg.substr(0, seg.size() - 1));
        if (pos >= text.size()) {
          Broken(phys, table, "missing newline at end of file");
          return;
        }
        continue;
      }
      content.append(seg);
      break;
    }
    // Only a '#' in the first column starts a comment, as in libwrap.
    if (!content.empty() && content[0] == '#') continue;
    if (content.find_first_not_of(kBlanks) == std::string::npos) continue;
    ParseRule(content, first, phys, table);
  }
}

void HostsCompiler::Broken(int line, HostsTable table, const std::string& msg) {
  // Debian's libwrap, at a line it cannot read whole, ignores the rest of
  // the file and answers "error" for it: hosts.allow then grants nothing
  // more, hosts.deny denies whatever no earlier rule matched. A sentinel
  // rule keeps that position in the scan. The rest of the file is ignored
  // as well, so nothing after it can be mistaken for a rule.
  const bool deny = table == HostsTable::kDeny;
  Error(line, msg + (deny ? ": the rest of the file is ignored and unmatched requests are denied"
                          : ": the rest of the file is ignored"));
  HostsRule r;
  r.table = table;
  r.line = r.last_line = line;
  r.index = p_->rules_.size();
  r.broken = true;
  List empty;
  empty.begin = empty.end = static_cast<uint32_t>(p_->segments_.size());
  p_->rules_.push_back(std::move(r));
  hosts_detail::RuleCode code;
  code.daemons = code.clients = empty;
  code.broken = true;
  p_->code_.push_back(code);
}

void HostsCompiler::ParseRule(std::string_view content, int first, int last, HostsTable table) {
  line_ = first;
  size_t c1 = SplitAt(content, ':');
  if (c1 == std::string_view::npos) {
    Error(first, "missing ':' separator: line ignored");
    return;
  }
  std::string_view daemons = content.substr(0, c1);
  std::string_view rest = content.substr(c1 + 1);
  std::optional<std::string_view> options;
  size_t c2 = SplitAt(rest, ':');
  std::string_view clients = rest;
  if (c2 != std::string_view::npos) {
    clients = rest.substr(0, c2);
    options = rest.substr(c2 + 1);
  }

  HostsRule r;
  r.table = table;
  r.line = first;
  r.last_line = last;
  r.index = p_->rules_.size();
  hosts_detail::RuleCode code;
  code.daemons = CompileList(daemons, true);
  code.clients = CompileList(clients, false);
  code.simple_daemons = SimpleDaemons(code.daemons);
  code.simple_clients = SimpleClients(code.clients);
  if (code.simple_daemons) code.daemons = TokenRange(code.daemons);
  if (code.simple_clients) code.clients = TokenRange(code.clients);
  p_->code_.push_back(code);
  if (options) {
    std::string err;
    if (!ParseHostsOptions(*options, &r.options, &err)) {
      r.bad_options = true;
      Error(first, "bad option: " + err + " (the rule denies)");
    }
  }
  p_->rules_.push_back(std::move(r));
}

List HostsCompiler::CompileList(std::string_view text, bool daemons) {
  List l;
  l.begin = static_cast<uint32_t>(p_->segments_.size());
  Segment seg;
  seg.begin = seg.end = static_cast<uint32_t>(p_->tokens_.size());
  ForEachToken(text, kListSeparators, [&](std::string_view tok) {
    if (EqualsNoCase(tok, "EXCEPT")) {
      p_->segments_.push_back(seg);
      seg.begin = seg.end = static_cast<uint32_t>(p_->tokens_.size());
      return;
    }
    Token t;
    // daemon@host and user@host: split after the first character, so that
    // "@netgroup" stays a host pattern.
    size_t at = tok.size() > 1 ? SplitAt(tok.substr(1), '@') : std::string_view::npos;
    if (at != std::string_view::npos) ++at;
    if (daemons) {
      t.has_str = true;
      t.str = AddStr(tok.substr(0, at));
      if (at != std::string_view::npos) t.host = CompileHost(tok.substr(at + 1), true, 0);
    } else if (at != std::string_view::npos) {
      t.has_str = true;
      t.host = CompileHost(tok.substr(at + 1), false, 0);
      t.str = AddStr(tok.substr(0, at));
      p_->possible_needs_ |= kNeedUser;
    } else {
      t.host = CompileHost(tok, false, 0);
    }
    if (t.has_str) t.str_kind = p_->strs_[t.str].kind;
    p_->tokens_.push_back(t);  // trivially copyable
    seg.end = static_cast<uint32_t>(p_->tokens_.size());
  });
  p_->segments_.push_back(seg);
  l.end = static_cast<uint32_t>(p_->segments_.size());
  return l;
}

// NOLINTNEXTLINE(misc-no-recursion): lists nest at most kHostsMaxListDepth deep
HostPat HostsCompiler::CompileHost(std::string_view tok, bool server, int depth) {
  // libwrap's host_match, in its order.
  HostPat h;
  h.kind = HostPat::Kind::kNever;
  if (!tok.empty() && tok[0] == '@') {
    std::string_view group = tok.substr(1);
    p_->possible_needs_ |= NameNeed(server);  // innetgr needs the host's name
    if (group.empty()) return h;
    uint32_t i = 0;
    while (i < p_->netgroups_.size() && p_->netgroups_[i] != group) ++i;
    if (i == p_->netgroups_.size()) {
      if (p_->netgroups_.size() >= kHostsMaxNetgroups) {
        Error(line_, "too many netgroups: @" + std::string(group) + " never matches");
        return h;
      }
      p_->netgroups_.emplace_back(group);
    }
    h.kind = HostPat::Kind::kNetgroup;
    h.a = i;
    return h;
  }
  if (!tok.empty() && tok[0] == '/') {
    h.kind = HostPat::Kind::kList;
    h.a = AddList(tok, server, depth + 1);
    return h;
  }
  if (EqualsNoCase(tok, "KNOWN")) {
    h.kind = HostPat::Kind::kKnown;
    p_->possible_needs_ |= NameNeed(server);
    return h;
  }
  if (EqualsNoCase(tok, "LOCAL")) {
    h.kind = HostPat::Kind::kLocal;
    p_->possible_needs_ |= NameNeed(server);
    return h;
  }
  size_t slash = SplitAt(tok, '/');
  if (slash != std::string_view::npos) return CompileMask(tok.substr(0, slash), tok.substr(slash + 1));
  if (!tok.empty() && tok[0] == '[') {
    // A bracketed IPv6 address is compared as a number; anything else in
    // brackets never matches.
    if (auto a = Bracketed(tok)) {
      h.kind = HostPat::Kind::kV6Net;
      h.a = AddV6(*a, 128);
    }
    return h;
  }
  // Anything else is matched as text against the address and, when it could
  // be a name, against the host name. Address-only texts that are canonical
  // become numbers (same answers, no string work per decision).
  StrPat str = CompileStr(tok);
  h.not_inaddr = NotInaddr(tok);
  if (!h.not_inaddr) {
    if (str.kind == StrPat::Kind::kExact) {
      if (auto v = CanonicalV4(tok)) {
        h.kind = HostPat::Kind::kV4Net;
        h.a = *v;
        h.b = ~0u;
        return h;
      }
    } else if (str.kind == StrPat::Kind::kPrefix) {
      if (CanonicalV4Prefix(tok, &h.a, &h.b)) {
        h.kind = HostPat::Kind::kV4Net;
        return h;
      }
    }
  }
  h.kind = HostPat::Kind::kString;
  if (h.not_inaddr && str.kind != StrPat::Kind::kAll) p_->possible_needs_ |= NameNeed(server);
  p_->strs_.push_back(std::move(str));
  h.a = static_cast<uint32_t>(p_->strs_.size() - 1);
  return h;
}

HostPat HostsCompiler::CompileMask(std::string_view net, std::string_view mask) {
  HostPat h;
  h.kind = HostPat::Kind::kNever;
  if (!net.empty() && net[0] == '[') {
    auto a = Bracketed(net);
    int prefix = Atoi(mask);
    if (!a || prefix < 0 || prefix > 128) {
      Error(line_, "bad [net]/prefix: " + std::string(net) + "/" + std::string(mask));
      return h;
    }
    h.kind = HostPat::Kind::kV6Net;
    h.a = AddV6(*a, prefix);
    return h;
  }
  auto n = DotQuad(net);
  std::optional<uint32_t> m = DotQuad(mask);
  if (!m) {
    // Not a dotted mask: a prefix length, 1 to 32 (Debian refuses /0).
    int prefix = Atoi(mask);
    if (prefix >= 1 && prefix <= 32) m = ~0u << (32 - prefix);
  }
  if (!n || !m) {
    Error(line_, "bad net/mask: " + std::string(net) + "/" + std::string(mask));
    return h;
  }
  // libwrap tests (addr & mask) == net without masking net: 1.2.3.1/24 never
  // matches anything. Kept, so that rules mean what they meant before.
  h.kind = HostPat::Kind::kV4Net;
  h.masked = true;
  h.a = *n;
  h.b = *m;
  return h;
}

// NOLINTNEXTLINE(misc-no-recursion): lists nest at most kHostsMaxListDepth deep
uint32_t HostsCompiler::AddList(std::string_view path, bool server, int depth) {
  // Lists are compiled per side because their patterns add to the needs of
  // that side; the cache key carries the side.
  std::string key(1, server ? 'S' : 'C');
  key.append(path);
  auto it = list_index_.find(key);
  if (it != list_index_.end()) return it->second;
  HostList l;
  l.path = std::string(path);
  FlattenList(path, server, depth, &l.patterns);
  auto i = static_cast<uint32_t>(p_->lists_.size());
  p_->lists_.push_back(std::move(l));
  list_index_.emplace(std::move(key), i);
  return i;
}

// NOLINTNEXTLINE(misc-no-recursion): lists nest at most kHostsMaxListDepth deep
void HostsCompiler::FlattenList(std::string_view path, bool server, int depth, std::vector<HostPat>* out) {
  // A list naming lists is flattened: "any pattern matches" over nested
  // sequences is the same as over the concatenation, in the same order, so
  // the matcher never recurses. Depth and total size are bounded (libwrap
  // recursed until the stack ran out on a list that names itself).
  if (depth > kHostsMaxListDepth) {
    Error(line_, "list " + std::string(path) + " nested too deep (or names itself): ignored");
    return;
  }
  auto it = lists_in_.find(path);
  if (it == lists_in_.end()) {
    missing_.emplace(path);
    return;
  }
  if (!it->second) return;  // does not exist: matches nothing
  std::string_view text = *it->second;
  // NOLINTNEXTLINE(misc-no-recursion): lists nest at most kHostsMaxListDepth deep
  ForEachToken(text, kListFileSpace, [&](std::string_view tok) {
    // Every token counts, lists named included: "/a /a /a ..." nested eight
    // deep must not take forever either.
    if (list_work_ >= kMaxListPatterns) return;
    if (++list_work_ == kMaxListPatterns) Error(line_, "too many patterns in /path lists: the rest ignored");
    if (!tok.empty() && tok[0] == '/') {
      FlattenList(tok, server, depth + 1, out);
      return;
    }
    out->push_back(CompileHost(tok, server, depth));
  });
}

void HostsCompiler::Finish() {
  p_->missing_lists_.assign(missing_.begin(), missing_.end());
}

HostsPolicy HostsPolicy::Compile(const HostsText& allow, const HostsText& deny, const HostsLists& lists) {
  HostsPolicy p;
  HostsCompiler c(&p, lists);
  c.ReadFile(allow, HostsTable::kAllow);
  c.ReadFile(deny, HostsTable::kDeny);
  c.Finish();
  return p;
}

std::string HostsError::ToString() const {
  std::string s = path;
  s += ':';
  s += std::to_string(line);
  s += ": ";
  s += message;
  return s;
}

bool HostsRule::HasOption(HostsOptionKind k) const {
  return std::ranges::any_of(options, [k](const HostsOption& o) { return o.kind == k; });
}

}  // namespace inetd::listener
