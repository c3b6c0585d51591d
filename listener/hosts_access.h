// hosts_access(5) and hosts_options(5): the tcp_wrappers 7.6 access control
// language (as Debian ships it), parsed and matched inside the sandboxed
// listener. Pure computation: no file access, no DNS, no syscalls. The monitor
// reads /etc/hosts.allow, /etc/hosts.deny and any `/path` lists they name, and
// the lookup helper supplies host and user names; this code only decides.
//
// Flow: HostsPolicy::Compile once per change of the files, then Check per
// connection. Check never guesses a name: when the first rule that would
// consult one is reached it answers kNeedLookup, the caller looks the name up
// asynchronously (or times out: Lookup::kFailed, "unknown" as libwrap treats
// it) and calls Check again with the answer.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace inetd::listener {

// ---- requests --------------------------------------------------------------

// An address as the rules see it. IPv4-mapped IPv6 addresses are IPv4 here,
// as libwrap sees them.
struct HostAddr {
  enum class Family : uint8_t { kUnknown, kV4, kV6 };
  Family family = Family::kUnknown;
  uint32_t v4 = 0;                // host byte order
  std::array<uint8_t, 16> v6{};   // network byte order
  // kV4 that arrived as ::ffff:a.b.c.d. The rules match it as IPv4, but
  // %a prints it as the peer's IPv6 text, as libwrap does.
  bool v4_mapped = false;

  static HostAddr FromSockaddr(const sockaddr* sa, socklen_t len);
  static HostAddr V4(uint32_t host_order);
  // inet_pton of either family; nullopt if `text` is neither.
  static std::optional<HostAddr> Parse(std::string_view text);
  // inet_ntop's text ("::ffff:a.b.c.d" when v4_mapped), or "unknown".
  std::string ToString() const;
};

// The state of a name (host or user) lookup.
enum class Lookup : uint8_t {
  kNotDone,   // not looked up yet: Check asks for it if a rule needs it
  kFailed,    // looked up, no answer or timed out: "unknown"
  kParanoid,  // host only: the reverse name does not map back to the address
  kFound,     // `name` holds the answer
};

struct HostsEndpoint {
  HostAddr addr;
  uint16_t port = 0;                    // for %r / %R only
  Lookup name_state = Lookup::kNotDone;
  std::string_view name;                // kFound only
  // kFound only: bit i set when the host is in HostsPolicy::netgroups()[i]
  // (innetgr, answered by the lookup helper together with the name).
  uint64_t netgroups = 0;
};

struct HostsRequest {
  // The basename of the server program (FreeBSD's choice), or the internal
  // service's name.
  std::string_view daemon;
  HostsEndpoint client;
  HostsEndpoint server;                 // the local end of the connection
  Lookup user_state = Lookup::kNotDone; // RFC 931 (ident) user of the client
  std::string_view user;                // kFound only
};

// Which lookup a decision is waiting for (bits of HostsPolicy::PossibleNeeds).
enum HostsNeed : uint8_t {
  kNeedNothing = 0,
  kNeedClientName = 1,
  kNeedServerName = 2,
  kNeedUser = 4,
};

// ---- options (hosts_options(5)) ---------------------------------------------

enum class HostsOptionKind : uint8_t {
  kAllow, kDeny, kSpawn, kTwist, kBanners, kSetenv, kUmask, kUser, kNice,
  kSeverity, kKeepalive, kLinger, kRfc931,
};

struct HostsOption {
  HostsOptionKind kind;
  // spawn, twist: the shell command, %-sequences not yet expanded;
  // banners: the directory; setenv: the value (expanded when used);
  // user: the user name.
  std::string value;
  std::string name;      // setenv: the variable; user: the group ("" if none)
  int number = 0;        // umask bits, nice increment, linger seconds,
                         // rfc931 timeout, severity level (LOG_*)
  int facility = -1;     // severity: LOG_* facility, -1 when not given
};

// Parses the option fields of one rule (the text after its second ':').
// Returns false with `error` set at the first bad option, as libwrap stops
// there; `out` then holds the options before it.
bool ParseHostsOptions(std::string_view text, std::vector<HostsOption>* out,
                       std::string* error);

// %-expansion of a spawn/twist/setenv/banners text, as libwrap's percent_x:
// %a %A %c %d %h %H %n %N %p %r %R %s %u %%. Every character an expansion
// yields outside libwrap's safe set is replaced by '_'; the text around the
// expansions is the administrator's and is kept. nullopt when the result
// would exceed kMaxExpansion.
constexpr size_t kMaxExpansion = 8192;
std::optional<std::string> ExpandPercent(std::string_view text,
                                         const HostsRequest& req, int pid);
// An option's value as libwrap hands it to the option: expanded, then
// trimmed of leading and trailing blanks (spawn, twist, setenv).
std::optional<std::string> ExpandOption(std::string_view text,
                                        const HostsRequest& req, int pid);
// The lookups that expanding `text` would use (%n, %N, %u), so the caller can
// do them before it expands.
uint8_t PercentNeeds(std::string_view text);
// libwrap's sanitizing: each byte outside [A-Za-z0-9] and "!@%-_=+:,./"
// becomes '_'. Applied to daemon, user and host names before matching.
std::string SanitizeName(std::string_view s);

// ---- the compiled policy -----------------------------------------------------

enum class HostsTable : uint8_t { kAllow, kDeny };

// One file's text as the monitor read it.
struct HostsText {
  std::string_view path;       // used in messages only
  bool present = false;        // false: the file does not exist (= empty)
  std::string_view text;
};

// Contents of the `/path` lists named in client lists, keyed by path, read by
// the monitor: nullopt when the file does not exist (or cannot be read), which
// matches nothing, as in libwrap. A path absent from the map is treated the
// same way and reported by HostsPolicy::MissingLists.
using HostsLists = std::map<std::string, std::optional<std::string>, std::less<>>;

struct HostsError {
  std::string path;
  int line = 0;                // 1-based physical line
  std::string message;
  std::string ToString() const;  // "path:line: message"
};

// Bounds that keep any input harmless.
constexpr size_t kHostsMaxLine = 2046;     // libwrap's logical line capacity
constexpr int kHostsMaxListDepth = 8;      // /path lists naming /path lists
constexpr size_t kHostsMaxNetgroups = 64;  // distinct @netgroup names

// Compiled patterns. Declared here because HostsPolicy holds them by value;
// only hosts_parse.cc and hosts_access.cc look inside.
namespace hosts_detail {

// Laid out for the decision loop: a rule is a few small structs in
// contiguous arrays (about 60 bytes), the strings and IPv6 nets live in
// side tables and are touched only by patterns that need them.

// A string pattern (daemon, user, or host text), lower-cased at load.
struct StrPat {
  enum class Kind : uint8_t { kWild, kSuffix, kAll, kKnown, kPrefix, kExact };
  Kind kind = Kind::kExact;
  std::string text;
};

// A host pattern, with addresses parsed at load. 12 bytes.
struct HostPat {
  enum class Kind : uint8_t {
    kNone,  // no host part (a plain daemon token)
    kNever, kV4Net, kV6Net, kKnown, kLocal, kNetgroup, kList, kString,
  };
  Kind kind = Kind::kNone;
  bool masked = false;      // kV4Net from n/m (libwrap refuses 255.255.255.255 there)
  bool not_inaddr = false;  // kString: may also match the host name
  // kV4Net: a = net, b = mask. kV6Net: a = index into v6_. kNetgroup: a =
  // bit number. kList: a = index into lists_. kString: a = index into strs_.
  uint32_t a = 0, b = 0;
};

// One list element: a daemon or user pattern and/or a host pattern. 20 bytes.
struct Token {
  HostPat host;
  bool has_str = false;
  StrPat::Kind str_kind = StrPat::Kind::kAll;  // copied from strs_[str]: ALL costs no lookup
  uint32_t str = 0;                            // index into strs_
};

// An IPv6 network as two 64-bit halves, the net already masked.
struct V6Net { uint64_t hi = 0, lo = 0, mask_hi = 0, mask_lo = 0; };

// Tokens [begin, end) of one EXCEPT-separated segment.
struct Segment { uint32_t begin = 0, end = 0; };
// Segments [begin, end): "s0 EXCEPT s1 EXCEPT s2" is s0 EXCEPT (s1 EXCEPT s2).
struct List { uint32_t begin = 0, end = 0; };

// What the decision loop reads of a rule.
struct RuleCode {
  List daemons, clients;
  bool broken = false;
  // The common shapes, decided inline without the general list walk: a
  // daemon list of plain names without EXCEPT; a client list of addresses,
  // nets and prefixes without EXCEPT. Such a list's begin/end index tokens_
  // directly, not segments_.
  bool simple_daemons = false;
  bool simple_clients = false;
};

// A /path list, nested lists flattened into it (so no kList inside).
struct HostList {
  std::string path;
  std::vector<HostPat> patterns;
};

}  // namespace hosts_detail

struct HostsRule {
  HostsTable table = HostsTable::kAllow;
  int line = 0;                  // first physical line of the rule
  int last_line = 0;             // last one, after `\` continuations
  size_t index = 0;              // position in HostsPolicy::rules()
  std::vector<HostsOption> options;
  // An option failed to parse: libwrap denies when such a rule matches, and
  // runs none of its options.
  bool bad_options = false;
  // Not a rule: the file could not be read past this point (an overlong or
  // unterminated line). Debian's libwrap then stops scanning that file and,
  // in hosts.deny, denies: reaching this entry does the same.
  bool broken = false;
  bool HasOption(HostsOptionKind k) const;
};

struct HostsVerdict {
  enum class Kind : uint8_t { kAllow, kDeny, kNeedLookup };
  Kind kind = Kind::kAllow;
  uint8_t need = kNeedNothing;        // kNeedLookup: the one lookup to do
  const HostsRule* rule = nullptr;    // the first rule that matched, if any
  // The matched rule replaces the service with its twist command.
  bool Twist() const {
    return rule != nullptr && !rule->bad_options && rule->HasOption(HostsOptionKind::kTwist);
  }
};

class HostsPolicy {
 public:
  // An empty policy: every request is allowed.
  HostsPolicy() = default;
  // Never fails: what cannot be parsed is reported in errors() and treated as
  // libwrap treats it (a line without ':' is skipped, an overlong or
  // unterminated line ends its file, a bad option makes its rule deny).
  static HostsPolicy Compile(const HostsText& allow, const HostsText& deny,
                             const HostsLists& lists = {});

  // First match wins: hosts.allow, then hosts.deny, else allow.
  HostsVerdict Check(const HostsRequest& req) const;
  // Which lookups any request could need (0: never look anything up).
  uint8_t PossibleNeeds() const { return possible_needs_; }

  const std::vector<HostsRule>& rules() const { return rules_; }
  const std::vector<HostsError>& errors() const { return errors_; }
  // @netgroup names, in the order of HostsEndpoint::netgroups bits.
  const std::vector<std::string>& netgroups() const { return netgroups_; }
  // Every /path list named (nested ones included) that `lists` did not hold:
  // the monitor reads these and compiles again.
  const std::vector<std::string>& MissingLists() const { return missing_lists_; }

 private:
  friend class HostsCompiler;
  friend class HostsMatcher;
  std::vector<HostsRule> rules_;
  std::vector<HostsError> errors_;
  std::vector<std::string> netgroups_;
  std::vector<std::string> missing_lists_;
  std::vector<hosts_detail::RuleCode> code_;     // parallel to rules_
  std::vector<hosts_detail::Token> tokens_;
  std::vector<hosts_detail::Segment> segments_;
  std::vector<hosts_detail::StrPat> strs_;
  std::vector<hosts_detail::V6Net> v6_;
  std::vector<hosts_detail::HostList> lists_;
  uint8_t possible_needs_ = 0;
};

}  // namespace inetd::listener
