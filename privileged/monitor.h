// The monitor: the root process that owns the configuration, the sockets
// and the children, and answers the listener's few requests.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "privileged/cli.h"
#include "privileged/config.h"
#include "proto/channel.h"
#include "proto/fd.h"
#include "proto/inetd.pb.h"
#include "spawner/login_class.h"
#include "spawner/plan.h"


namespace inetd::priv {

// A hard cap on children of all services together, whatever the listener
// asks: the host's protection against a compromised listener.
constexpr int kMaxChildrenTotal = 4096;
// Hello.version the monitor speaks.
constexpr uint32_t kProtocolVersion = 1;
// Requests naming this many replaced tables are still served: in a storm of
// SIGHUPs the listener may lag that many tables behind. A few KiB.
constexpr size_t kPastTables = 128;

// The login class of an external entry, resolved for its user (whose home
// and name replace ~ and $). nullopt, with why in `msg`, if the entry must be
// skipped; warnings go to `msg` too.
std::optional<spawn::LoginClass> ServiceClass(const spawn::LoginConf& classes,
                                              const ServiceConfig& c, std::string& msg);

// One row of the running table.
// The daemon name hosts_access matches: the program's basename (FreeBSD),
// or the service name for internal services.
std::string DaemonName(const ServiceConfig& c);
// Facts from the kernel (requests.cc): `fd` is a connection accepted on the
// service's port; its peer for logs and the TCP environment, or `why` not.
bool IsConnectionOf(int fd, const ServiceConfig& conf, std::string& peer,
                    std::vector<std::string>& env, const char*& why);

struct Service {
  ServiceConfig conf;
  spawn::LoginClass login;  // external services: resolved at load
  UniqueFd sock;          // the monitor's own copy of the listening socket
  int max_child = 0;      // effective limit, 0 = unlimited
  int children = 0;       // running now
  uint64_t serial = 0;    // stable across reloads while the socket is kept
  uint64_t spawned = 0;   // children started (SIGUSR1 status)
  uint64_t refused = 0;   // requests refused by a limit (SIGUSR1 status)
  int64_t rate_start = 0;  // -R: when the current 60 s window opened (ms)
  int rate_count = 0;      // -R: children started in that window
};

spawn::Plan PlanFor(const Service& s, int sock, std::vector<std::string> env);

struct Child {
  uint64_t serial;        // the service it belongs to
};

// What a request did to the listener's standing.
enum class Verdict : uint8_t {
  kOk,         // done (answered or acted)
  kRefused,    // a policy refusal, answered with Refused
  kViolation,  // the listener broke the protocol: it is killed
};

class Monitor {
 public:
  explicit Monitor(Options opts);

  // Reads inetd.conf and (re)binds: sockets of unchanged services are kept,
  // new ones bound, removed ones closed. False if the file could not be read
  // (the running table is then kept).
  bool Load();
  // The main loop: starts the listener and runs until SIGTERM/SIGINT.
  // Returns the exit status.
  int Run(uid_t listener_uid, gid_t listener_gid, const std::string& listener_program);

  // Talks to a listener on this control channel (tests drive it directly).
  void Attach(UniqueFd control, pid_t pid);
  // Reads and handles one frame from the control channel.
  Verdict OnControlReadable();
  // Reads and logs one frame from the log channel; false on end or garbage.
  bool OnLogReadable(int fd);
  // Reaps every exited child, updates counts, tells the listener.
  void Reap();

  const std::vector<Service>& services() const { return services_; }
  uint64_t generation() const { return generation_; }
  size_t child_count() const { return children_.size(); }
  bool running() const { return state_ == State::kRunning; }

 private:
  enum class State : uint8_t { kAwaitHello, kRunning };
  using Handler = Verdict (Monitor::*)(const wire::ToMonitor&, std::vector<UniqueFd>&);
  struct Request {
    int body;      // wire::ToMonitor::BodyCase
    State state;
    size_t fds;
    Handler handle;
  };
  static const Request kRequests[];

  // requests.cc: one handler per request, each given a frame that already
  // passed framing, decoding and the (body, state, fd count) table.
  Verdict Dispatch(wire::Frame& frame);
  Verdict OnHello(const wire::ToMonitor& m, std::vector<UniqueFd>& fds);
  Verdict OnSpawn(const wire::ToMonitor& m, std::vector<UniqueFd>& fds);
  Verdict OnReadable(const wire::ToMonitor& m, std::vector<UniqueFd>& fds);
  Verdict OnReadLists(const wire::ToMonitor& m, std::vector<UniqueFd>& fds);
  Verdict OnHostsCommand(const wire::ToMonitor& m, std::vector<UniqueFd>& fds);
  bool ApplyHostsRule(const Service& s, const wire::HostsMatch& m, spawn::Plan& plan);
  // The service a request names, or nullptr (and why) if the id or the
  // generation is not current.
  Service* Lookup(uint32_t id, uint64_t generation, Verdict& why);
  // Policy: may this service get one more child now?
  const char* LimitReached(Service& s);
  // Forks the service's child on `sock` and answers the request (id,
  // generation) with Spawned; `peer` is for the -l log only.
  // `env` describes the connection to the service (before the class's).
  Verdict Launch(Service& s, uint32_t id, uint64_t generation, int sock, const std::string& peer,
                 std::vector<std::string> env = {}, const wire::HostsMatch* hosts = nullptr);

  Verdict Refuse(uint32_t id, uint64_t generation, const char* reason);
  Verdict Violation(const char* what);
  bool Send(const wire::ToListener& msg, const std::vector<int>& fds = {});
  void SendConfig();
  // hosts_access(5) files (hosts_files.cc), with -w or -W only.
  bool Wrapping() const;
  void ReadHosts(bool always);
  void WatchHosts();
  void OnHostsChanged();
  void SendHosts();
  void Shutdown();
  void LogStatus();

  Options opts_;
  ParseOptions parse_opts_;
  std::vector<Service> services_;
  // Recent tables, newest first, id -> serial (at most kPastTables).
  std::deque<std::vector<uint64_t>> past_serials_;
  uint64_t generation_ = 0;
  uint64_t next_serial_ = 1;
  std::map<pid_t, Child> children_;
  wire::Hosts hosts_;  // what the listener has of the hosts files
  UniqueFd inotify_;   // on them, with -w or -W
  State state_ = State::kAwaitHello;
  UniqueFd control_;
  pid_t listener_pid_ = -1;
  bool listener_dead_ = false;  // reaped, restart not yet scheduled
};

}  // namespace inetd::priv
