// hosts_access(5) files for -w and -W. The monitor only reads them and hands
// the bytes to the listener, which parses and matches them in its sandbox:
// no rule is parsed as root. Edits take effect at once (inotify), as with
// libwrap, which reads the files on every connection.
#include <arpa/inet.h>
#include <fcntl.h>
#include <pwd.h>
#include <grp.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "privileged/hosts_files.h"
#include "privileged/monitor.h"
#include "proto/inetd.pb.h"
#include "proto/log.h"
#include "proto/paths.h"

namespace inetd::priv {
namespace {

// Everything together fits one channel record (kMaxFrame).
constexpr size_t kMaxHostsFile = size_t{64} * 1024;
constexpr size_t kMaxHostsBytes = size_t{192} * 1024;
constexpr int kMaxLists = 32;

// Missing: an empty file (present stays false). Anything else that stops a
// whole read, a directory or a file over `room` bytes included, is
// unreadable, and the listener refuses what it would decide.
void ReadHostsFile(const std::string& path, size_t room, wire::HostsFile* f) {
  f->Clear();
  f->set_path(path);
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.Valid() && errno == ENOENT) return;
  f->set_present(true);
  std::string text;
  char buf[4096];
  ssize_t n = fd.Valid() ? 0 : -1;
  while (fd.Valid() && text.size() <= room && (n = read(fd.Get(), buf, sizeof buf)) > 0)
    text.append(buf, static_cast<size_t>(n));
  if (n < 0 || text.size() > room) {
    f->set_unreadable(true);
    f->set_error(n < 0 ? strerror(errno) : "too large");
    return;
  }
  f->set_text(std::move(text));
}

// Whether `path` is a whole word (between blanks, commas, colons, line ends
// or a continuation backslash) of `text`.
bool NamedIn(const std::string& text, const std::string& path) {
  auto sep = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' ||
                                 c == ':' || c == '\\'; };
  for (size_t at = text.find(path); at != std::string::npos; at = text.find(path, at + 1)) {
    size_t end = at + path.size();
    if ((at == 0 || sep(text[at - 1])) && (end == text.size() || sep(text[end]))) return true;
  }
  return false;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> RuleOptions(const std::string& text,
                                                             uint32_t line) {
  size_t at = 0;
  for (uint32_t l = 1; l < line && at != std::string::npos; ++l)
    if ((at = text.find('\n', at)) != std::string::npos) ++at;
  std::string logical;
  while (line > 0 && at != std::string::npos && at < text.size()) {
    size_t end = text.find('\n', at);
    std::string part = text.substr(at, end == std::string::npos ? end : end - at);
    bool more = !part.empty() && part.back() == '\\';
    logical += more ? part.substr(0, part.size() - 1) : part;
    at = more && end != std::string::npos ? end + 1 : std::string::npos;
  }
  size_t i = 0;
  bool bracket = false;
  for (int colons = 0; i < logical.size() && colons < 2; ++i) {
    if (logical[i] == '[' || logical[i] == ']') bracket = logical[i] == '[';
    else if (logical[i] == ':' && !bracket) ++colons;
  }
  std::vector<std::pair<std::string, std::string>> out;
  std::string cur;
  auto take = [&] {
    const char* blank = " \t\r";
    size_t k = cur.find_first_not_of(blank), kend = cur.find_first_of(" \t\r=", k);
    if (k == std::string::npos) return cur.clear();
    std::string key = cur.substr(k, kend == std::string::npos ? kend : kend - k);
    for (char& ch : key) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
    size_t v = kend == std::string::npos ? cur.size() : cur.find_first_not_of(blank, kend);
    if (v != std::string::npos && v < cur.size() && cur[v] == '=') v = cur.find_first_not_of(blank, v + 1);
    std::string value = v == std::string::npos ? "" : cur.substr(v);
    value.erase(value.find_last_not_of(blank) + 1);
    out.emplace_back(std::move(key), std::move(value));
    cur.clear();
  };
  for (; i <= logical.size(); ++i) {
    if (i == logical.size() || logical[i] == ':') {
      take();
    } else if (logical[i] == '\\' && i + 1 < logical.size() && logical[i + 1] == ':') {
      cur += ':';
      ++i;
    } else {
      cur += logical[i];
    }
  }
  return out;
}

std::string Expand(const std::string& cmd, const Expansions& x) {
  auto host = [](const std::string& name, const std::string& addr) {
    return name.empty() ? addr : name;
  };
  std::string out;
  for (size_t i = 0; i < cmd.size(); ++i) {
    if (cmd[i] != '%' || i + 1 == cmd.size()) {
      out += cmd[i];
      continue;
    }
    std::string v;
    switch (cmd[++i]) {
      case 'a': v = x.client; break;
      case 'A': v = x.server; break;
      case 'c': v = (x.user.empty() ? "" : x.user + "@") + host(x.client_name, x.client); break;
      case 'd': v = x.daemon; break;
      case 'h': v = host(x.client_name, x.client); break;
      case 'H': v = x.server; break;
      case 'n': v = x.client_name.empty() ? "unknown" : x.client_name; break;
      case 'N': v = "unknown"; break;
      case 'p': v = std::to_string(getpid()); break;
      case 'r': v = x.client_port; break;
      case 'R': v = x.server_port; break;
      case 's': v = x.daemon + "@" + x.server; break;
      case 'u': v = x.user.empty() ? "unknown" : x.user; break;
      case '%': v = "%"; break;
      default: break;
    }
    for (char& ch : v)
      if (!isalnum(static_cast<unsigned char>(ch)) && strchr("!@%-_=+:,./", ch) == nullptr) ch = '_';
    out += v;
  }
  return out;
}

namespace {

// An IPv4 or IPv6 address and port as text, a mapped IPv4 one as IPv4.
void AddrPort(const sockaddr_storage& a, std::string& host, std::string& port) {
  const auto& in = reinterpret_cast<const sockaddr_in&>(a);
  const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
  char text[INET6_ADDRSTRLEN] = "unknown";
  bool v4 = a.ss_family == AF_INET;
  if (v4) inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
  else if (a.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr))
    inet_ntop(AF_INET, &in6.sin6_addr.s6_addr[12], text, sizeof text);
  else if (a.ss_family == AF_INET6) inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
  host = text;
  port = std::to_string(ntohs(v4 ? in.sin_port : in6.sin6_port));
}

}  // namespace

bool Monitor::Wrapping() const { return opts_.wrap_external || opts_.wrap_internal; }

// Both files afresh, and the lists already asked for, sent to the listener
// if anything differs from what it has (or `always`). An unreadable file is
// logged after the send: whoever reads that line finds the listener told.
void Monitor::ReadHosts(bool always) {
  wire::Hosts next;
  ReadHostsFile(kHostsAllow, kMaxHostsFile, next.mutable_allow());
  ReadHostsFile(kHostsDeny, kMaxHostsFile, next.mutable_deny());
  size_t used = next.allow().text().size() + next.deny().text().size();
  for (const wire::HostsFile& old : hosts_.lists()) {
    wire::HostsFile* f = next.add_lists();
    ReadHostsFile(old.path(), kMaxHostsBytes - std::min(used, kMaxHostsBytes), f);
    used += f->text().size();
  }
  const bool changed = next.SerializeAsString() != hosts_.SerializeAsString();
  if (changed) hosts_ = std::move(next);
  if (changed || always) SendHosts();
  for (const wire::HostsFile* f : {&hosts_.allow(), &hosts_.deny()})
    if (changed && f->unreadable())
      Log(LOG_ERR, "%s: %s: wrapped services refuse every connection", f->path().c_str(),
          f->error().c_str());
}

// The files and their directories (for files created or renamed into
// place). Any event re-reads everything: two small files.
void Monitor::WatchHosts() {
  constexpr uint32_t kFile = IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF;
  constexpr uint32_t kDir = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE;
  std::vector<std::string> paths = {kHostsAllow, kHostsDeny};
  for (const wire::HostsFile& l : hosts_.lists()) paths.push_back(l.path());
  for (const std::string& p : paths) {
    (void)inotify_add_watch(inotify_.Get(), p.c_str(), kFile);
    (void)inotify_add_watch(inotify_.Get(), p.substr(0, p.rfind('/') + 1).c_str(), kDir);
  }
}

void Monitor::OnHostsChanged() {
  char buf[4096];
  while (read(inotify_.Get(), buf, sizeof buf) > 0) {
  }
  ReadHosts(false);
  WatchHosts();
}

void Monitor::SendHosts() {
  if (state_ != State::kRunning || !Wrapping()) return;
  wire::ToListener msg;
  *msg.mutable_hosts() = hosts_;
  Send(msg);
}

// ReadLists: only paths the administrator wrote in a file read here, so a
// compromised listener cannot have root read anything else for it.
Verdict Monitor::OnReadLists(const wire::ToMonitor& m, std::vector<UniqueFd>&) {
  if (!Wrapping()) return Violation("list request without -w or -W");
  size_t used = hosts_.ByteSizeLong();
  for (const std::string& path : m.read_lists().paths()) {
    bool named = NamedIn(hosts_.allow().text(), path) || NamedIn(hosts_.deny().text(), path);
    bool held = false;
    for (const wire::HostsFile& l : hosts_.lists()) {
      named = named || NamedIn(l.text(), path);
      held = held || l.path() == path;
    }
    if (!named || path.empty() || path[0] != '/') return Violation("list request for a path not named");
    if (held) continue;
    wire::HostsFile* f = hosts_.add_lists();
    if (hosts_.lists_size() > kMaxLists) {
      f->set_path(path);
      f->set_present(true);
      f->set_unreadable(true);
      continue;
    }
    ReadHostsFile(path, kMaxHostsBytes - std::min(used, kMaxHostsBytes), f);
    used += f->text().size();
  }
  WatchHosts();
  SendHosts();
  return Verdict::kOk;
}

}  // namespace inetd::priv

namespace inetd::priv {

// The rule's options that change how the service runs (user, umask, nice,
// setenv, twist) applied to `plan`, and its spawn commands run, from the
// monitor's own copy of the file. False: the rule asks for root for a
// service that does not run as root, or for a user that does not exist.
bool Monitor::ApplyHostsRule(const Service& s, const wire::HostsMatch& m, spawn::Plan& plan) {
  sockaddr_storage peer{}, local{};
  socklen_t plen = sizeof peer, llen = sizeof local;
  if (getpeername(plan.sock, reinterpret_cast<sockaddr*>(&peer), &plen) < 0 ||
      getsockname(plan.sock, reinterpret_cast<sockaddr*>(&local), &llen) < 0)
    return false;
  Expansions x;
  AddrPort(peer, x.client, x.client_port);
  AddrPort(local, x.server, x.server_port);
  x.client_name = m.client_name().substr(0, 256);
  x.user = m.user().substr(0, 256);
  x.daemon = DaemonName(s.conf);
  std::vector<std::string> spawns;
  for (const auto& [key, value] : RuleOptions(m.deny_file() ? hosts_.deny().text() : hosts_.allow().text(), m.line())) {
    if (key == "user") {
      const passwd* pw = getpwnam(value.substr(0, value.find('.')).c_str());
      const group* gr = value.find('.') == std::string::npos ? nullptr : getgrnam(value.substr(value.find('.') + 1).c_str());
      if (pw == nullptr || (value.find('.') != std::string::npos && gr == nullptr) ||
          (pw->pw_uid == 0 && s.conf.uid != 0)) {
        Log(LOG_ERR, "%s: line %u: user %s refused", m.deny_file() ? "hosts.deny" : "hosts.allow", m.line(), value.c_str());
        return false;
      }
      plan.uid = pw->pw_uid;
      plan.gid = gr != nullptr ? gr->gr_gid : pw->pw_gid;
      plan.groups = {plan.gid};
    } else if (key == "umask") {
      plan.login.umask = static_cast<mode_t>(strtoul(value.c_str(), nullptr, 8) & 0777);
    } else if (key == "nice") {
      plan.login.priority = value.empty() ? 10 : static_cast<int>(strtol(value.c_str(), nullptr, 10));
    } else if (key == "setenv") {
      std::string name = value.substr(0, value.find_first_of(" \t"));
      size_t v = value.find_first_not_of(" \t", name.size());
      plan.env.insert(plan.env.begin(), name + "=" + Expand(v == std::string::npos ? "" : value.substr(v), x));
    } else if (key == "spawn") {
      spawns.push_back(Expand(value, x));
    } else if (key == "twist") {
      plan.path = "/bin/sh";
      plan.argv = {"sh", "-c", Expand(value, x)};
    } else if (key == "keepalive" || key == "linger") {
      linger l{1, static_cast<int>(strtol(value.c_str(), nullptr, 10))};
      int on = 1;
      (void)(key == "linger" ? setsockopt(plan.sock, SOL_SOCKET, SO_LINGER, &l, sizeof l)
                             : setsockopt(plan.sock, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on));
    } else if (key == "banners") {
      // DIR/DAEMON, expanded, to the client: bounded, and never waited on.
      wire::HostsFile banner;
      ReadHostsFile(value + "/" + x.daemon, 4096, &banner);
      std::string text = Expand(banner.text(), x);
      (void)send(plan.sock, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  }
  // Spawned commands get /dev/null on 0-2, as libwrap's shell_cmd.
  UniqueFd null(open("/dev/null", O_RDWR | O_CLOEXEC));
  for (const std::string& cmd : spawns) {
    spawn::Plan side = plan;
    side.path = "/bin/sh";
    side.argv = {"sh", "-c", cmd};
    side.sock = null.Get();
    if (Result<pid_t> pid = spawn::Spawn(side); pid && children_.size() < kMaxChildrenTotal)
      children_[*pid] = Child{0};  // counted for the global cap only
  }
  return true;
}

// HostsCommand: a connection of a wrapped stream service that the
// listener does not hand over with Spawn. Its rule's spawn commands run,
// and its twist command on the connection, as the service's user.
Verdict Monitor::OnHostsCommand(const wire::ToMonitor& m, std::vector<UniqueFd>& fds) {
  Verdict why;
  const wire::HostsCommand& c = m.hosts_command();
  Service* s = Lookup(c.service(), c.generation(), why);
  if (s == nullptr) return why == Verdict::kRefused ? Verdict::kOk : why;
  if (!(s->conf.internal ? opts_.wrap_internal : opts_.wrap_external) || s->conf.type != SockType::kStream)
    return Violation("hosts command for a service that is not wrapped");
  std::string peer;
  std::vector<std::string> env;
  const char* bad = nullptr;
  if (!IsConnectionOf(fds[0].Get(), s->conf, peer, env, bad)) return Violation(bad);
  // Bounded like the service's own children: max-child, -R, the global cap.
  if (const char* limit = LimitReached(*s)) return Log(LOG_WARNING, "%s: hosts command: %s",
                                                       ServiceLabel(s->conf).c_str(), limit), Verdict::kOk;
  spawn::Plan plan = PlanFor(*s, fds[0].Get(), std::move(env));
  plan.path.clear();  // only a twist runs on the connection
  if (!ApplyHostsRule(*s, c.hosts(), plan) || plan.path.empty()) return Verdict::kOk;
  if (Result<pid_t> pid = spawn::Spawn(plan); pid) children_[*pid] = Child{0};
  return Verdict::kOk;
}

}  // namespace inetd::priv
