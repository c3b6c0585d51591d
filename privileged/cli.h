// The command line, FreeBSD inetd(8) flags plus -D (foreground for
// supervising init systems). Parsed by the monitor at start.
#pragma once

#include <string>

namespace inetd::priv {

constexpr int kExitUsage = 64;  // EX_USAGE

struct Options {
  bool debug = false;          // -d: foreground, debug log to stderr
  bool foreground = false;     // -D: foreground, normal logging (init systems)
  bool check_only = false;     // -t: check the configuration and exit
  bool log_connections = false;  // -l
  bool wrap_external = false;  // -w
  bool wrap_internal = false;  // -W
  int max_child = 0;           // -c: default max-child, 0 = unlimited
  int per_ip_rate = 0;         // -C: default per-IP connections/min, 0 = unlimited
  int per_ip_child = 0;        // -s: default per-IP children, 0 = unlimited
  int invocations_per_min = 256;  // -R (FreeBSD's TOOMANY), 0 = unlimited
  int ipv6_prefix = 64;        // -P: IPv6 sources per-IP limits count together
  std::string bind_address;    // -a
  std::string pidfile;         // -p; empty: the default for the mode
  bool pidfile_given = false;
  std::string user = "_inetd";  // -u: the listener's user
  std::string config = "/etc/inetd.conf";
  std::string login_conf = "/etc/login.conf";  // -L (FreeBSD's path is fixed)
};

// Parses argv. On a bad flag or value, writes why and the usage line to
// stderr and returns false (the caller exits kExitUsage).
bool ParseCommandLine(int argc, char* const argv[], Options& out);

// The pidfile to use: -p's, else /var/run/inetd.pid unless -d (FreeBSD).
std::string PidfilePath(const Options& o);

}  // namespace inetd::priv
