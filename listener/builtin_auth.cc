// RFC 1413 auth (ident) with FreeBSD's options, served in the listener's
// event loop: one query line in, one answer line out, then close. The
// query is hostile input; the answer may name a local user.
//
// The sandbox has no socket(), no file system and no NSS, so each thing
// FreeBSD's built-in looks up comes from elsewhere:
// - the connection's owner: sock_diag, on one netlink socket that
//   PrepareAuth opens before the seccomp filter is loaded;
// - the owner's name: a uid -> name table that the monitor sends with each
//   configuration that has an auth service (user names are world-readable
//   in the passwd file, and ident exists to hand them out). A uid missing
//   from it (a user added since the last reload, a directory too large to
//   enumerate) is answered as its number, as -i would;
// - the system's name for the reply: uname(2), in PrepareAuth;
// - -g's random names: a generator seeded from getrandom(2) in PrepareAuth;
// - ~/.fakeid and ~/.noident (-f, -F, -n): never read; such a service fails
//   closed and answers HIDDEN-USER (ident.cc, ParseOptions).
#include <arpa/inet.h>
#include <errno.h>
#include <sys/random.h>
#include <sys/utsname.h>

#include <array>
#include <cstring>
#include <ctime>
#include <string>
#include <unordered_map>
#include <vector>

#include "listener/builtin_impl.h"
#include "listener/ident.h"
#include "listener/sock_diag.h"
#include "proto/inetd.pb.h"
#include "proto/log.h"

namespace inetd::listener {
namespace {

struct AuthState {
  SockDiag diag;
  std::string system_os = "UNIX";  // RFC 1413's generic name, until PrepareAuth
  uint64_t random = 0;             // splitmix64 state
  std::unordered_map<uint32_t, std::string> names;  // uid -> user name
  bool lookup_failure_logged = false;
};
// A function's static, built on first use: a global's constructor could
// throw before main.
AuthState& Auth() {
  static AuthState state;
  return state;
}

// splitmix64: -g's names only need to carry no information about the user,
// not to be unguessable.
uint64_t NextRandom() {
  uint64_t z = (Auth().random += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

ident::ParsedOptions OptionsOf(const wire::Service& conf) {
  const std::vector<std::string> argv(conf.builtin_args().begin(), conf.builtin_args().end());
  return ident::ParseOptions(argv);
}

class AuthConn final : public Conn {
 public:
  AuthConn(UniqueFd fd, ident::Options options, std::string label)
      : Conn(std::move(fd)), options_(std::move(options)), label_(std::move(label)) {}
  ~AuthConn() override {
    // The loop closes a connection that outlived -t or the idle timeout.
    if (!noted_)
      Note(LOG_INFO, reading_ ? "no complete query in time" : "answer not taken in time");
  }

  bool OnEvent(uint32_t events) override {
    if (reading_) return Read();
    if (events & EPOLLERR) {
      Note(LOG_INFO, "connection lost before the answer was sent");
      return false;
    }
    return Flush();
  }
  uint32_t Interest() const override { return reading_ ? EPOLLIN : EPOLLOUT; }
  int LifetimeMs() const override { return options_.timeout_ms; }

 private:
  bool Read();
  bool Flush();
  std::string Answer(std::string_view line);
  void Note(int priority, const char* what);

  ident::Options options_;  // a copy: a reload does not change a running exchange
  std::string label_;       // "auth/tcp", for log lines
  std::array<char, ident::kMaxLine> in_;
  size_t have_ = 0;
  std::string out_;
  size_t sent_ = 0;
  bool reading_ = true;
  bool noted_ = false;  // how the connection ended is logged, or needs no line
};

// Reads until the first end of line. Anything but one well-framed line ends
// the connection with a log line: FreeBSD's answer to such input is no
// answer, and RFC 1413 reads a close without an answer as UNKNOWN-ERROR.
bool AuthConn::Read() {
  for (int i = 0; i < kMaxCallsPerEvent; ++i) {
    const IoResult r = RecvSome(fd(), in_.data() + have_, in_.size() - have_);
    if (r.io == Io::kAgain) return true;
    if (r.io == Io::kError) {
      Note(LOG_INFO, "connection reset before a complete query");
      return false;
    }
    if (r.io == Io::kEof) {
      Note(LOG_INFO, have_ == 0 ? "closed without a query" : "query without an end of line");
      return false;
    }
    have_ += r.n;
    const ident::ScanResult s = ident::ScanLine(std::string_view(in_.data(), have_));
    switch (s.scan) {
      case ident::Scan::kNeedMore:
        continue;
      case ident::Scan::kOverlong:
        Note(LOG_WARNING, "query longer than 1000 bytes; closing");
        return false;
      case ident::Scan::kNul:
        Note(LOG_WARNING, "NUL byte in the query; closing");
        return false;
      case ident::Scan::kLine:
        break;
    }
    // One query per connection, as FreeBSD: what follows the line is dropped.
    out_ = Answer(std::string_view(in_.data(), s.line_len));
    reading_ = false;
    return Flush();
  }
  return true;
}

bool AuthConn::Flush() {
  while (sent_ < out_.size()) {
    const IoResult r = SendSome(fd(), out_.data() + sent_, out_.size() - sent_);
    if (r.io == Io::kAgain) return true;
    if (r.io != Io::kData) {
      Note(LOG_INFO, "connection lost before the answer was sent");
      return false;
    }
    sent_ += r.n;
  }
  // FIN after the answer, and a little unread input taken away, so that
  // close() does not turn into a reset that could discard the answer.
  noted_ = true;
  shutdown(fd(), SHUT_WR);
  char sink[512];
  for (int i = 0; i < 4 && RecvSome(fd(), sink, sizeof sink).io == Io::kData; ++i) {
  }
  return false;
}

std::string AuthConn::Answer(std::string_view line) {
  const ident::Request r = ident::ParseRequest(line);
  ident::Facts f;
  f.system_os = Auth().system_os;
  if (ident::NeedsOwner(options_, r)) {
    sockaddr_storage local, remote;
    if (IdentTuple(fd(), static_cast<uint16_t>(r.server_port), static_cast<uint16_t>(r.client_port),
                   &local, &remote))
      f.owner = Auth().diag.TcpOwner(local, remote);
    if (f.owner.status == ident::OwnerStatus::kFailed && !Auth().lookup_failure_logged) {
      Auth().lookup_failure_logged = true;  // once: it would repeat for every query
      Log(LOG_WARNING, "%s: owner lookup through sock_diag failed; answering %s", label_.c_str(),
          options_.fallback.empty() ? "UNKNOWN-ERROR" : "the -d name");
    }
    if (f.owner.status == ident::OwnerStatus::kFound) {
      auto it = Auth().names.find(f.owner.uid);
      if (it != Auth().names.end()) f.user_name = it->second;
    }
  }
  std::string random;
  if (options_.random) {
    random = ident::RandomName(NextRandom());
    f.random_name = random;
  }
  std::string answer = ident::Answer(options_, r, f);
  if (LogDebugEnabled()) {
    std::string shown(answer, 0, answer.size() - 2);  // without CR LF
    Log(LOG_DEBUG, "%s: answering \"%s\"", label_.c_str(), shown.c_str());
  }
  return answer;
}

// A log line that names the peer.
void AuthConn::Note(int priority, const char* what) {
  noted_ = true;
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    if (ss.ss_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
      port = ntohs(sin->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
      port = ntohs(sin6->sin6_port);
    }
  }
  Log(priority, "%s from %s port %u: %s", label_.c_str(), host, port, what);
}

}  // namespace

void PrepareAuth() {
  utsname u{};
  if (uname(&u) == 0 && ident::ValidOs(u.sysname)) Auth().system_os = u.sysname;
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof seed)) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    seed = static_cast<uint64_t>(ts.tv_sec) * 1'000'000'007ULL + static_cast<uint64_t>(ts.tv_nsec);
  }
  Auth().random = seed;
  Result<SockDiag> diag = SockDiag::Open();
  if (!diag) {
    Log(LOG_WARNING, "auth: %s: %s: owner lookups will fail", diag.error().what,
        strerrordesc_np(diag.error().code));
    return;
  }
  Auth().diag = std::move(*diag);
}

// Once per configuration: the arguments of every auth service are checked
// and what is wrong with them logged here, not per connection.
void ConfigureAuth(const wire::Config& config) {
  for (const wire::Service& s : config.services()) {
    if (s.builtin() != "auth") continue;
    const ident::ParsedOptions p = OptionsOf(s);
    for (const ident::Note& n : p.notes)
      Log(n.refused ? LOG_ERR : LOG_WARNING, "%s/%s: %s", s.name().c_str(), s.proto().c_str(),
          n.text.c_str());
    if (p.options.real && !p.options.hidden && !Auth().diag.Valid())
      Log(LOG_ERR, "%s/%s: no sock_diag socket: owner lookups will fail", s.name().c_str(),
          s.proto().c_str());
  }
  Auth().names.clear();
  for (const wire::User& u : config.users())
    if (ident::ValidUserId(u.name())) Auth().names.emplace(u.uid(), u.name());  // first one wins
}

std::unique_ptr<Conn> NewAuthConn(UniqueFd fd, const wire::Service& conf) {
  return std::make_unique<AuthConn>(std::move(fd), OptionsOf(conf).options,
                                    conf.name() + "/" + conf.proto());
}

}  // namespace inetd::listener
