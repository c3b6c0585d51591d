// hosts_options(5): the option fields after a rule's second ':', and the
// %-expansion of their commands. Parsing runs in the listener at load; the
// expansion is a pure function so that whichever side runs a spawn or twist
// command can expand it from facts it checked itself. Nothing here runs
// anything.
//
// Values are checked as Debian's libwrap checks them when the rule fires
// (tcpdmatch agrees on every case in tests/unit/tcpdmatch_diff_test.py):
// an error in any option makes the whole rule deny.
#include <syslog.h>

#include <cstdio>
#include <cstdlib>

#include "listener/hosts_access.h"

namespace inetd::listener {

namespace {

constexpr std::string_view kBlanks = " \t\r\n";

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  size_t b = s.find_first_not_of(kBlanks);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kBlanks) - b + 1);
}

enum Flags : uint8_t {
  kNeedsValue = 1,   // "requires value"
  kNoValue = 2,      // "requires no value"
  kLast = 4,         // "must be at end"
};

struct OptionSpec {
  std::string_view name;
  HostsOptionKind kind;
  uint8_t flags;
};

constexpr OptionSpec kOptions[] = {
    {"allow", HostsOptionKind::kAllow, kNoValue | kLast},
    {"deny", HostsOptionKind::kDeny, kNoValue | kLast},
    {"spawn", HostsOptionKind::kSpawn, kNeedsValue},
    {"twist", HostsOptionKind::kTwist, kNeedsValue | kLast},
    {"banners", HostsOptionKind::kBanners, kNeedsValue},
    {"setenv", HostsOptionKind::kSetenv, kNeedsValue},
    {"umask", HostsOptionKind::kUmask, kNeedsValue},
    {"user", HostsOptionKind::kUser, kNeedsValue},
    {"nice", HostsOptionKind::kNice, 0},
    {"severity", HostsOptionKind::kSeverity, kNeedsValue},
    {"keepalive", HostsOptionKind::kKeepalive, kNoValue},
    {"linger", HostsOptionKind::kLinger, kNeedsValue},
    {"rfc931", HostsOptionKind::kRfc931, 0},
};

struct Named { std::string_view name; int value; };

// The names libwrap's severity option accepts (its own table, not syslog's:
// no authpriv, ftp or syslog facility, no "warn" or "error" aliases).
constexpr Named kFacilities[] = {
    {"kern", LOG_KERN}, {"user", LOG_USER}, {"mail", LOG_MAIL},
    {"daemon", LOG_DAEMON}, {"auth", LOG_AUTH}, {"lpr", LOG_LPR},
    {"news", LOG_NEWS}, {"uucp", LOG_UUCP}, {"cron", LOG_CRON},
    {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};
constexpr Named kLevels[] = {
    {"emerg", LOG_EMERG}, {"alert", LOG_ALERT}, {"crit", LOG_CRIT},
    {"err", LOG_ERR}, {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
    {"info", LOG_INFO}, {"debug", LOG_DEBUG},
};

template <size_t N>
std::optional<int> FindNamed(const Named (&table)[N], std::string_view s) {
  for (const Named& n : table)
    if (EqualsNoCase(n.name, s)) return n.value;
  return std::nullopt;
}

// sscanf("%d") and nothing after it: an optional sign, decimal digits.
std::optional<int> Int(std::string_view s) {
  size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  if (i == s.size() || s.size() > 11) return std::nullopt;
  long v = 0;
  for (size_t j = i; j < s.size(); ++j) {
    if (s[j] < '0' || s[j] > '9') return std::nullopt;
    v = v * 10 + (s[j] - '0');
  }
  if (s[0] == '-') v = -v;
  if (v < -2147483647L - 1 || v > 2147483647L) return std::nullopt;
  return static_cast<int>(v);
}

// Splits the option text into fields at each ':' not preceded by '\'; "\:"
// stands for ':' and any other backslash is kept as it is.
std::vector<std::string> Fields(std::string_view text) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == ':') {
      out.back() += ':';
      ++i;
    } else if (text[i] == ':') {
      out.emplace_back();
    } else {
      out.back() += text[i];
    }
  }
  return out;
}

bool Fail(std::string* error, std::string msg) {
  *error = std::move(msg);
  return false;
}

// Checks `value` for option `o` and fills its structured form.
bool ParseValue(HostsOption* o, std::string_view value, std::string* error) {
  switch (o->kind) {
    case HostsOptionKind::kSpawn:
    case HostsOptionKind::kTwist:
    case HostsOptionKind::kBanners:
      o->value = std::string(value);
      return true;
    case HostsOptionKind::kSetenv: {
      // "name value": the name ends at the first blank; glibc's setenv
      // refuses a name with '=', which libwrap reports as an error.
      size_t sp = value.find_first_of(kBlanks);
      std::string_view name = value.substr(0, sp);
      if (name.find('=') != std::string_view::npos) return Fail(error, "bad setenv name: \"" + std::string(name) + "\"");
      o->name = std::string(name);
      o->value = sp == std::string_view::npos ? std::string() : std::string(Trim(value.substr(sp)));
      return true;
    }
    case HostsOptionKind::kUmask: {
      // Octal digits only, at most 0777.
      if (value.empty() || value.size() > 12) return Fail(error, "bad umask value: \"" + std::string(value) + "\"");
      long v = 0;
      for (char c : value) {
        if (c < '0' || c > '7') return Fail(error, "bad umask value: \"" + std::string(value) + "\"");
        v = v * 8 + (c - '0');
      }
      if (v > 0777) return Fail(error, "bad umask value: \"" + std::string(value) + "\"");
      o->number = static_cast<int>(v);
      return true;
    }
    case HostsOptionKind::kUser: {
      // "user" or "user.group"; resolved by whoever runs the command.
      size_t dot = value.find('.');
      o->value = std::string(value.substr(0, dot));
      if (dot != std::string_view::npos) o->name = std::string(value.substr(dot + 1));
      return true;
    }
    case HostsOptionKind::kNice: {
      o->number = 10;  // libwrap's default
      if (value.empty()) return true;
      auto v = Int(value);
      if (!v) return Fail(error, "bad nice value: \"" + std::string(value) + "\"");
      o->number = *v;
      return true;
    }
    case HostsOptionKind::kSeverity: {
      size_t dot = value.find('.');
      std::string_view level = dot == std::string_view::npos ? value : value.substr(dot + 1);
      if (dot != std::string_view::npos) {
        auto f = FindNamed(kFacilities, value.substr(0, dot));
        if (!f) return Fail(error, "bad syslog facility: \"" + std::string(value.substr(0, dot)) + "\"");
        o->facility = *f;
      }
      auto l = FindNamed(kLevels, level);
      if (!l) return Fail(error, "bad syslog severity: \"" + std::string(level) + "\"");
      o->number = *l;
      return true;
    }
    case HostsOptionKind::kLinger: {
      auto v = Int(value);
      if (!v || *v < 0) return Fail(error, "bad linger value: \"" + std::string(value) + "\"");
      o->number = *v;
      return true;
    }
    case HostsOptionKind::kRfc931: {
      o->number = 10;  // libwrap's RFC931_TIMEOUT
      if (value.empty()) return true;
      auto v = Int(value);
      if (!v || *v <= 0) return Fail(error, "bad rfc931 timeout: \"" + std::string(value) + "\"");
      o->number = *v;
      return true;
    }
    case HostsOptionKind::kAllow:
    case HostsOptionKind::kDeny:
    case HostsOptionKind::kKeepalive:
      return true;
  }
  return true;
}

// libwrap's ok_chars.
bool SafeChar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!@%-_=+:,./").find(static_cast<char>(c)) != std::string_view::npos;
}

// libwrap's eval_* strings, from what the request knows. Nothing is looked
// up here: a name not looked up is "unknown" (%h falls back to the address).
std::string AddrText(const HostsEndpoint& e) { return e.addr.ToString(); }

std::string NameText(const HostsEndpoint& e) {
  switch (e.name_state) {
    case Lookup::kFound: return e.name.empty() ? "unknown" : std::string(e.name);
    case Lookup::kParanoid: return "paranoid";
    default: return "unknown";
  }
}

std::string HostInfo(const HostsEndpoint& e) {
  if (e.name_state == Lookup::kFound && !e.name.empty()) {
    std::string n = SanitizeName(e.name);
    if (!EqualsNoCase(n, "unknown") && !EqualsNoCase(n, "paranoid")) return n;
  }
  return AddrText(e);
}

std::string UserText(const HostsRequest& r) {
  return r.user_state == Lookup::kFound && !r.user.empty() ? std::string(r.user) : "unknown";
}

}  // namespace

bool ParseHostsOptions(std::string_view text, std::vector<HostsOption>* out, std::string* error) {
  std::vector<std::string> fields = Fields(text);
  for (size_t i = 0; i < fields.size(); ++i) {
    std::string_view f = Trim(fields[i]);
    // The keyword ends at a blank or '='; "keyword = value" and
    // "keyword=value" are the same.
    size_t k = f.find_first_of(" \t\r\n=");
    std::string_view key = f.substr(0, k);
    std::string_view value;
    if (k != std::string_view::npos) {
      value = f.substr(k);
      value.remove_prefix(std::min(value.find_first_not_of(kBlanks), value.size()));
      if (!value.empty() && value[0] == '=') {
        value.remove_prefix(1);
        value.remove_prefix(std::min(value.find_first_not_of(kBlanks), value.size()));
      }
    }
    if (key.empty()) return Fail(error, "missing option name");
    const OptionSpec* spec = nullptr;
    for (const OptionSpec& s : kOptions)
      if (EqualsNoCase(s.name, key)) spec = &s;
    if (!spec) return Fail(error, "bad option name: \"" + std::string(key) + "\"");
    if (!value.empty() && (spec->flags & kNoValue))
      return Fail(error, "option \"" + std::string(spec->name) + "\" requires no value");
    if (value.empty() && (spec->flags & kNeedsValue))
      return Fail(error, "option \"" + std::string(spec->name) + "\" requires value");
    if ((spec->flags & kLast) && i + 1 < fields.size())
      return Fail(error, "option \"" + std::string(spec->name) + "\" must be at end");
    HostsOption o{spec->kind, {}, {}, 0, -1};
    if (!ParseValue(&o, value, error)) return false;
    out->push_back(std::move(o));
  }
  return true;
}

std::string SanitizeName(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (!SafeChar(static_cast<unsigned char>(c))) c = '_';
  return out;
}

std::optional<std::string> ExpandPercent(std::string_view text, const HostsRequest& req, int pid) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%' || i + 1 == text.size()) {
      out += text[i];  // the administrator's text, kept as written
    } else {
      std::string e;
      switch (text[++i]) {
        case 'a': e = AddrText(req.client); break;
        case 'A': e = AddrText(req.server); break;
        case 'c': {
          e = HostInfo(req.client);
          if (req.user_state == Lookup::kFound && !req.user.empty() && !EqualsNoCase(SanitizeName(req.user), "unknown"))
            e.insert(0, 1, '@').insert(0, req.user);  // user@host
          break;
        }
        case 'd': e = req.daemon.empty() ? "unknown" : std::string(req.daemon); break;
        case 'h': e = HostInfo(req.client); break;
        case 'H': e = HostInfo(req.server); break;
        case 'n': e = NameText(req.client); break;
        case 'N': e = NameText(req.server); break;
        case 'p': e = std::to_string(pid); break;
        case 'r': e = std::to_string(req.client.port); break;
        case 'R': e = std::to_string(req.server.port); break;
        case 's': {
          std::string host = HostInfo(req.server);
          e = req.daemon.empty() ? "unknown" : std::string(req.daemon);
          if (!EqualsNoCase(host, "unknown")) e += "@" + host;
          break;
        }
        case 'u': e = UserText(req); break;
        case '%': e = "%"; break;
        default: break;  // libwrap warns and expands to nothing
      }
      // Whatever came from outside is made safe for the shell.
      out += SanitizeName(e);
    }
    if (out.size() > kMaxExpansion) return std::nullopt;
  }
  return out;
}

std::optional<std::string> ExpandOption(std::string_view text, const HostsRequest& req, int pid) {
  std::optional<std::string> e = ExpandPercent(text, req, pid);
  if (e) *e = std::string(Trim(*e));
  return e;
}

uint8_t PercentNeeds(std::string_view text) {
  uint8_t need = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] != '%') continue;
    switch (text[++i]) {
      case 'n': need |= kNeedClientName; break;
      case 'N': need |= kNeedServerName; break;
      case 'u': need |= kNeedUser; break;
      default: break;
    }
  }
  return need;
}

}  // namespace inetd::listener
