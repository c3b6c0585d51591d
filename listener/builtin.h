// Internal services (inetd.conf "internal"), served inside the sandboxed
// listener's event loop: non-blocking, no fork, no privilege. Each built-in
// lives in its own small file (builtin_echo.cc ...); this is what they share.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proto/fd.h"

namespace inetd::wire {
class Config;
class Service;
}  // namespace inetd::wire

namespace inetd::listener {

// Per-connection limits every stream built-in obeys.
constexpr size_t kConnBuffer = size_t{16} * 1024;  // the most one connection holds
constexpr int kIdleTimeoutMs = 60 * 1000;          // no progress for this long: close
constexpr int kMaxLifetimeMs = 10 * 60 * 1000;     // chargen and friends: whole-connection cap

// One accepted connection of an internal stream service. The loop owns it,
// watches fd() for Interest(), calls OnEvent, and closes it when OnEvent
// returns false or the idle / lifetime deadline passes.
class Conn {
 public:
  explicit Conn(UniqueFd fd) : fd_(std::move(fd)) {}
  virtual ~Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  int fd() const { return fd_.Get(); }
  // Called once right after accept (daytime and time answer at once).
  // Returns false when the connection is finished.
  virtual bool OnStart() { return true; }
  // `events` as epoll reports them. Returns false when finished.
  virtual bool OnEvent(uint32_t events) = 0;
  // EPOLLIN and/or EPOLLOUT: what the connection waits for now. The loop
  // re-reads it after every OnStart/OnEvent.
  virtual uint32_t Interest() const = 0;
  // Whole-connection cap in ms (0: none besides the idle timeout).
  virtual int LifetimeMs() const { return 0; }
  // After OnEvent returned false: the id of the service this connection is
  // to be handed to (tcpmux), or -1 to close it.
  virtual int64_t HandoffTo() const { return -1; }
  UniqueFd TakeFd() { return std::move(fd_); }

 private:
  UniqueFd fd_;
};

using StreamFactory = std::unique_ptr<Conn> (*)(UniqueFd fd);
// A stream built-in that takes inetd.conf arguments (auth): made with its
// service's row, whose builtin_args hold them.
using ConfiguredFactory = std::unique_ptr<Conn> (*)(UniqueFd fd, const wire::Service& conf);
// Called with every new table, before any connection of it is made: checks
// the arguments once per configuration and logs what is wrong with them.
using ConfigureHook = void (*)(const wire::Config& config);

// Reads one datagram from `fd` (non-blocking) and answers it if the
// service answers. Must not block; drops what it cannot send at once.
// The loop calls it at most a bounded number of times per turn.
// Returns false when there was nothing to read (EAGAIN).
using DgramHandler = bool (*)(int fd);

struct Builtin {
  std::string_view name;   // as in /etc/services: echo, discard, chargen ...
  StreamFactory stream;    // nullptr if no stream form
  DgramHandler dgram;      // nullptr if no dgram form
  ConfiguredFactory configured = nullptr;  // used instead of `stream` when set
  ConfigureHook configure = nullptr;
};

// The built-in named `name`, or nullptr. The monitor uses the same list of
// names to validate inetd.conf (BuiltinNames()).
const Builtin* FindBuiltin(std::string_view name);

// Runs every built-in's ConfigureHook on a new table (Loop::Apply).
void ConfigureBuiltins(const wire::Config& config);
// What the built-ins need from system calls the sandbox forbids, done once
// before the seccomp filter is loaded (main.cc): auth's sock_diag netlink
// socket, the system's name and a random seed.
void PrepareBuiltins();

// tcpmux (RFC 1078): the services it may hand a connection to, the
// tcpmux/NAME entries of the current table. The loop sets it on every Config.
struct TcpmuxEntry {
  std::string name;  // matched without regard to case
  uint32_t id;       // the service's id in the current table
  bool plus;         // tcpmux/+NAME: the listener answers "+Go" first
};
void SetTcpmuxTable(std::vector<TcpmuxEntry> table);

// Wall clock for daytime and time; tests may replace it.
using Clock = time_t (*)();
void SetBuiltinClock(Clock clock);
time_t BuiltinNow();

}  // namespace inetd::listener
