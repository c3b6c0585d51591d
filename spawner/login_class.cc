// Login classes (login_class.h). The monitor, as root, reads login.conf (a
// file only root can write) and resolves classes at load; Apply runs in the
// child between fork and exec and only hands resolved numbers to the kernel.
// Behaviour follows FreeBSD's getcap(3), login_cap(3) and setusercontext(3);
// each difference is said where it is made.
#include "spawner/login_class.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <map>
#include <utility>

#include "proto/fd.h"
#include "spawner/sys.h"

namespace inetd::spawn {
namespace {

using Record = LoginConf::Record;
using Caps = std::vector<std::pair<std::string_view, int>>;  // fields and their lines
constexpr size_t kMaxDepth = 32;   // tc= nesting, as getcap(3)
constexpr size_t kMaxCaps = 4096;  // fields after tc= expansion: bounds a tc= fan-out
constexpr size_t kMaxFile = 1 << 20;

// FreeBSD's resource limits and Linux's; kind 'n' number, 's' size, 't' time.
// Linux has no sbsize (socket buffer space per user), swapuse,
// pseudoterminals, kqueues or umtxp: parsed, and ignored with a warning
// unless infinite.
struct Resource {
  const char* name;
  int resource;
  char kind;
};
constexpr Resource kResources[] = {
    {"cputime", RLIMIT_CPU, 't'},          {"filesize", RLIMIT_FSIZE, 's'},
    {"datasize", RLIMIT_DATA, 's'},        {"stacksize", RLIMIT_STACK, 's'},
    {"coredumpsize", RLIMIT_CORE, 's'},    {"memoryuse", RLIMIT_RSS, 's'},  // Linux ignores it
    {"memorylocked", RLIMIT_MEMLOCK, 's'}, {"maxproc", RLIMIT_NPROC, 'n'},
    {"openfiles", RLIMIT_NOFILE, 'n'},     {"vmemoryuse", RLIMIT_AS, 's'},
    {"sbsize", -1, 's'},  {"swapuse", -1, 's'}, {"pseudoterminals", -1, 'n'},
    {"kqueues", -1, 'n'}, {"umtxp", -1, 'n'}};
// setusercontext's variables besides PATH ("term" and "mail" are for logins).
constexpr std::pair<const char*, const char*> kVariables[] = {
    {"lang", "LANG"}, {"charset", "MM_CHARSET"}, {"timezone", "TZ"}};

std::string Q(std::string_view s) { return std::string("'").append(s).append("'"); }

std::vector<std::string_view> Split(std::string_view s, const char* separators) {
  std::vector<std::string_view> out;
  for (;;) {
    const size_t end = s.find_first_of(separators);
    out.push_back(s.substr(0, end));
    if (end == std::string_view::npos) return out;
    s.remove_prefix(end + 1);
  }
}

// getcap(3) string escapes: \E \b \t \n \f \r, \c for a colon, \ooo, ^X and
// ^?, \x for any other x. An escape cut short is dropped; a NUL ends the
// value, as in C. (A colon always ends a field: "\:" is not an escape.)
std::string Unescape(std::string_view v) {
  static constexpr char kFrom[] = "ebtnfrc", kTo[] = "\033\b\t\n\f\r:";
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if ((c == '^' || c == '\\') && ++i == v.size()) break;
    if (c == '^') {
      c = v[i] == '?' ? '\177' : static_cast<char>(v[i] & 037);
    } else if (c == '\\' && v[i] >= '0' && v[i] <= '7') {
      int n = v[i] - '0';
      for (int k = 1; k < 3 && i + 1 < v.size() && v[i + 1] >= '0' && v[i + 1] <= '7'; ++k)
        n = n * 8 + (v[++i] - '0');
      c = static_cast<char>(n);
    } else if (c == '\\') {
      const char* p = v[i] ? strchr(kFrom, tolower(static_cast<unsigned char>(v[i]))) : nullptr;
      c = p ? kTo[p - kFrom] : v[i];
    }
    if (c == '\0') break;
    out += c;
  }
  return out;
}

// login.conf(5): in what goes into the environment, ~ is the user's home
// (and a slash unless one follows) and $ the user's name, unless escaped
// with a backslash. Without a passwd entry nothing changes.
std::string Subst(std::string_view v, const passwd* pw) {
  if (pw == nullptr) return std::string(v);
  const std::string_view home = pw->pw_dir != nullptr ? pw->pw_dir : "";
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if ((v[i] == '~' || v[i] == '$') && !out.empty() && out.back() == '\\')
      out.back() = v[i];
    else if (v[i] == '~')
      out.append(home).append(home.ends_with('/') || v.substr(i + 1).starts_with('/') ? "" : "/");
    else if (v[i] == '$')
      out += pw->pw_name != nullptr ? pw->pw_name : "";
    else
      out += v[i];
  }
  return out;
}

// An unsigned number in C notation (0x hex, leading 0 octal), consumed.
bool Number(std::string_view& s, uint64_t& n) {
  const int base = s.size() > 1 && s[0] == '0' ? (s[1] == 'x' || s[1] == 'X' ? 16 : 8) : 10;
  if (base == 16) s.remove_prefix(2);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n, base);
  s.remove_prefix(p - s.data());
  return ec == std::errc();
}

// A whole value that is an integer in [lo, hi], maybe negative.
bool Int(std::string_view s, int64_t lo, int64_t hi, int64_t& out) {
  const bool neg = s.starts_with('-');
  uint64_t n = 0;
  if (neg) s.remove_prefix(1);
  if (!Number(s, n) || !s.empty() || n > 1U << 20) return false;
  out = neg ? -static_cast<int64_t>(n) : static_cast<int64_t>(n);
  return out >= lo && out <= hi;
}

// login_cap(3)'s number, size and time values: an infinity word, or terms
// added together, each a number with (for sizes and times) a unit letter.
bool LimitValue(std::string_view s, char kind, rlim_t& out) {
  for (const char* inf : {"infinity", "inf", "unlimited", "unlimit", "-1"})
    if (s.size() == strlen(inf) && strncasecmp(s.data(), inf, s.size()) == 0)
      return out = RLIM_INFINITY, true;
  static constexpr uint64_t kSize[] = {512, 1ULL << 10, 1ULL << 20, 1ULL << 30, 1ULL << 40};
  static constexpr uint64_t kTime[] = {1, 60, 3600, 86400, 7ULL * 86400, 365ULL * 86400};
  const char* units = kind == 's' ? "bkmgt" : kind == 't' ? "smhdwy" : "";
  if (s.empty()) return false;  // FreeBSD takes an empty size or time as 0
  for (out = 0; !s.empty();) {
    uint64_t n, mult = 1;
    if (!Number(s, n)) return false;
    if (!s.empty()) {  // a unit; a number has none, so it is one term
      const char* u = s[0] != '\0' ? strchr(units, tolower(s[0] & 0xff)) : nullptr;
      if (u == nullptr) return false;
      mult = (kind == 's' ? kSize : kTime)[u - units];
      s.remove_prefix(1);
    }
    if (__builtin_mul_overflow(n, mult, &n) || __builtin_add_overflow(out, n, &out)) return false;
  }
  return true;
}

rlim_t NrOpen() {  // Linux refuses an RLIMIT_NOFILE above fs.nr_open
  char buf[32];
  const UniqueFd fd(open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC));
  std::string_view s(buf, fd.Valid() ? std::max(read(fd.Get(), buf, sizeof buf), ssize_t{0}) : 0);
  uint64_t n = 0;
  return Number(s, n) && n > 0 ? n : 1 << 20;
}

// Whether the child, root until setuid, may raise a hard limit.
bool CanRaiseLimits() {
  __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  return syscall(SYS_capget, &head, data) == 0 && (data[0].effective >> CAP_SYS_RESOURCE & 1) != 0;
}

const Record* Find(const LoginConf& db, std::string_view name) {
  for (const Record& r : db.records)
    for (std::string_view alias : Split(std::string_view{r.text}.substr(0, r.text.find(':')), "|"))
      if (alias == name) return &r;
  return nullptr;
}

// The fields of `r` after its names, each tc=NAME replaced in place by the
// fields of that record: what comes before a tc= overrides it (getcap).
// NOLINTNEXTLINE(misc-no-recursion): tc= depth is bounded by kMaxDepth
bool Expand(const LoginConf& db, const Record& r, std::vector<const Record*>& chain, Caps& caps,
            std::string& err) {
  const std::string where = db.file + ":" + std::to_string(r.line) + ": ";
  const std::vector<std::string_view> fields = Split(r.text, ":");
  for (size_t i = 1; i < fields.size(); ++i) {
    std::string_view f = fields[i];
    // Continuation lines start with a tab before the colon: not part of a name.
    f.remove_prefix(std::min(f.find_first_not_of(" \t"), f.size()));
    if (f.empty()) continue;
    if (caps.size() >= kMaxCaps) return err = where + "more than 4096 capabilities", false;
    caps.emplace_back(f, r.line);
    if (!f.starts_with("tc=")) continue;
    const Record* t = Find(db, f.substr(3));
    if (t == nullptr) return err = where + Q(f) + ": no such class", false;
    if (chain.size() >= kMaxDepth || std::find(chain.begin(), chain.end(), t) != chain.end())
      return err = where + Q(f) + ": tc= loop", false;
    chain.push_back(t);
    if (!Expand(db, *t, chain, caps, err)) return false;
    chain.pop_back();
  }
  return true;
}

// getcap's lookup: the first field named `cap` wins and cap@ cancels it; a
// bare name (a boolean) is passed over; cap=value and cap#value count.
std::optional<std::pair<std::string, int>> Get(const Caps& caps, std::string_view cap) {
  for (const auto& [f, line] : caps) {
    if (!f.starts_with(cap) || f.size() == cap.size()) continue;
    if (f[cap.size()] == '@') return std::nullopt;
    if (f[cap.size()] == '=' || f[cap.size()] == '#')
      return std::pair{Unescape(f.substr(cap.size() + 1)), line};
  }
  return std::nullopt;
}

}  // namespace

LoginConf ReadLoginConf(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.Valid() && errno == ENOENT) return {};
  LoginConf bad{path, "", {}};
  struct stat st {};
  if (!fd.Valid() || fstat(fd.Get(), &st) < 0)
    return bad.error = path + ": " + strerror(errno), bad;
  // setenv reaches every service's environment. (FreeBSD skips a file that
  // others can write, and then applies no class at all.) Owned by root, or
  // by whoever runs this: tests, and -t as a user.
  if (!S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) || st.st_mode & 022)
    return bad.error = path + ": not a regular file that only root can write", bad;
  std::string text;
  char buf[8192];
  ssize_t n = 0;
  while (text.size() <= kMaxFile && (n = read(fd.Get(), buf, sizeof buf)) > 0) text.append(buf, n);
  if (text.size() > kMaxFile || n < 0) return bad.error = path + ": unreadable or over 1 MiB", bad;
  return ParseLoginConf(text, path);
}

// getcap(3) records: a line each, a backslash at the end of a line joins the
// next one; empty records and those that start with '#' are skipped. Unlike
// getcap, a last line without a newline counts, and CR before LF is dropped.
LoginConf ParseLoginConf(std::string_view text, const std::string& file) {
  LoginConf db{file, "", {}};
  const std::vector<std::string_view> lines = Split(text, "\n");
  Record r{};
  bool more = false;  // the record goes on on the next line
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (!more) r = Record{static_cast<int>(i) + 1, ""};
    r.text += line;
    if ((more = r.text.ends_with('\\'))) r.text.pop_back();
    if ((!more || i + 1 == lines.size()) && !r.text.empty() && r.text[0] != '#')
      db.records.push_back(std::exchange(r, {}));
  }
  return db;
}

std::optional<LoginClass> ResolveClass(const LoginConf& db, std::string_view name,
                                       const passwd* pw, std::string& msg) {
  msg.clear();
  if (!db.error.empty()) return msg = db.error, std::nullopt;
  auto warn = [&](const std::string& w) { msg += (msg.empty() ? "" : "; ") + w; };
  LoginClass lc;
  Caps caps;
  if (!db.file.empty()) {  // without a file, FreeBSD's login_getclass has no capabilities
    const Record* r = Find(db, name);
    if (r == nullptr && (r = Find(db, "default")) != nullptr) {
      warn("class " + Q(name) + " not in " + db.file + ", using 'default'");
      name = "default";
    }
    if (r == nullptr)
      return msg = "no class " + Q(name) + " nor 'default' in " + db.file, std::nullopt;
    std::vector<const Record*> chain{r};
    if (!Expand(db, *r, chain, caps, msg)) return std::nullopt;
    lc.name = name;
  }
  auto bad = [&](int line, const std::string& what) {
    msg = db.file + ":" + std::to_string(line) + ": class " + Q(lc.name) + ": " + what;
    return std::optional<LoginClass>();
  };

  for (const Resource& res : kResources) {  // NAME sets both halves; NAME-cur, NAME-max one
    rlimit rl{};  // a half the class leaves alone stays as the child inherits it
    if (res.resource >= 0) getrlimit(res.resource, &rl);
    const rlim_t inherited = rl.rlim_max;
    bool cur_given = false, finite = false;
    int line = 0;  // of the last one given; 0: none
    for (const char* half : {"", "-cur", "-max"}) {
      const std::string cap = res.name + std::string(half);
      auto c = Get(caps, cap);
      rlim_t v;
      if (!c) continue;
      if (!LimitValue(c->first, res.kind, v))
        return bad(c->second, "bad " + cap + " " + Q(c->first));
      cur_given |= strcmp(half, "-max") != 0;
      if (strcmp(half, "-max") != 0) rl.rlim_cur = v;
      if (strcmp(half, "-cur") != 0) rl.rlim_max = v;
      finite |= v != RLIM_INFINITY;
      line = c->second;
    }
    if (res.resource < 0 && finite)
      warn(std::string(res.name) + " has no Linux equivalent: ignored");
    if (res.resource < 0 || line == 0) continue;
    if (!cur_given) rl.rlim_cur = std::min(rl.rlim_cur, rl.rlim_max);  // follows a lower hard limit
    if (res.resource == RLIMIT_NOFILE)  // as FreeBSD's kernel caps it at maxfilesperproc
      rl = {std::min(rl.rlim_cur, NrOpen()), std::min(rl.rlim_max, NrOpen())};
    if (rl.rlim_max > inherited && !CanRaiseLimits()) {  // in a container, say
      warn(std::string(res.name) + ": kept at inetd's own hard limit " + std::to_string(inherited) +
           " (raising it takes CAP_SYS_RESOURCE)");
      rl = {std::min(rl.rlim_cur, inherited), inherited};
    }
    if (rl.rlim_cur > rl.rlim_max)
      return bad(line, std::string(res.name) + ": soft limit above hard");
    lc.limits.push_back({res.resource, rl, res.name});
  }

  int64_t n = 0;
  if (auto c = Get(caps, "priority"); c && c->first == "inherit") {
    lc.priority.reset();
  } else if (c) {
    if (!Int(c->first, -20, 20, n))
      return bad(c->second, "priority " + Q(c->first) + " is not -20 to 20");
    lc.priority = static_cast<int>(n);
  }
  if (auto c = Get(caps, "umask"); c && c->first != "inherit") {
    if (!Int(c->first, 0, 0777, n))
      return bad(c->second, "umask " + Q(c->first) + " is not 0 to 0777");
    lc.umask = static_cast<mode_t>(n);
  }

  // The environment, in setusercontext's order: PATH, the variables, setenv.
  std::map<std::string, std::string> env{{"PATH", kDefaultPath}};
  if (auto c = Get(caps, "path")) {  // words split at spaces, tabs or commas; empty words dropped
    env["PATH"].clear();
    for (std::string_view word : Split(c->first, ", \t"))
      if (!word.empty()) env["PATH"] += (env["PATH"].empty() ? "" : ":") + Subst(word, pw);
  }
  for (const auto& [cap, var] : kVariables)
    if (auto c = Get(caps, cap)) env[var] = Subst(c->first, pw);
  if (auto c = Get(caps, "setenv")) {  // NAME=value, comma-separated; quotes protect commas
    std::string item;
    char quote = 0;
    for (const char ch : c->first + ",") {
      if (quote ? ch == quote : (ch == '"' || ch == '\'')) {
        quote = quote ? '\0' : ch;
      } else if (quote || ch != ',') {
        item += ch;
      } else if (size_t b = item.find_first_not_of(" \t"), eq = item.find('='); b < item.size()) {
        if (eq == std::string::npos || eq <= b)
          return bad(c->second, "setenv entry " + Q(item) + " is not NAME=value");
        env[item.substr(b, eq - b)] = Subst(item.substr(eq + 1), pw);
        item.clear();
      }
    }
    if (quote) return bad(c->second, "setenv: unbalanced quote");
  }
  lc.env.clear();
  for (const auto& [var, val] : env) lc.env.emplace_back(var).append("=").append(val);
  return lc;
}

// setusercontext's order: limits, priority, umask. Nothing here allocates
// or writes errno (spawner/sys.h: it runs in the monitor's memory).
__attribute__((no_sanitize("address"))) Result<void> Apply(const LoginClass& lc) {
  long r;
  for (const Limit& l : lc.limits)
    if ((r = Sys(SYS_prlimit64, 0, l.resource, reinterpret_cast<long>(&l.value), 0)) < 0)
      return Error{static_cast<int>(-r), l.name};
  if (lc.priority && (r = Sys(SYS_setpriority, PRIO_PROCESS, 0, *lc.priority)) < 0)
    return Error{static_cast<int>(-r), "setpriority"};
  if (lc.umask) Sys(SYS_umask, *lc.umask);
  return {};
}

}  // namespace inetd::spawn
