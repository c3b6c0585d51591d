// inetd.conf(5): the service table the monitor owns. Parsed by the monitor
// (root) from files root owns; never from network input. A bad entry is
// reported with file:line and field and skipped; the rest is served.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace inetd::priv {

enum class SockType : uint8_t { kStream, kDgram, kRaw, kSeqpacket };

// One socket to bind and the service behind it. An inetd.conf entry that
// names several addresses (OpenBSD's host lists, tcp46 is one socket) gives
// one ServiceConfig per socket.
struct ServiceConfig {
  std::string file;
  int line = 0;

  std::string name;          // service field: name, port number, or unix path
  std::string proto;         // protocol field as written: tcp, udp6, unix ...
  SockType type = SockType::kStream;
  int family = AF_INET;      // AF_INET, AF_INET6 or AF_UNIX
  int ipproto = 0;           // IPPROTO_TCP, IPPROTO_UDP, 0 for unix
  bool v6only = false;       // IPV6_V6ONLY: tcp6/udp6 yes, tcp46/udp46 no
  sockaddr_storage addr{};   // bind address with port (or sun_path)
  socklen_t addrlen = 0;

  bool wait = false;
  int max_child = -1;        // -1: not given (default from -c; wait means 1)
  int per_ip_rate = -1;      // -1: not given (default from -C)
  int per_ip_child = -1;     // -1: not given (default from -s)

  std::string user, group, login_class;  // as written (class default "daemon")
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, resolved at load

  bool internal = false;      // server-program "internal"
  std::string builtin;        // internal: the built-in's name (echo, tcpmux ...)
  std::string program;        // external: absolute path of the server program
  std::vector<std::string> argv;  // server-program-arguments (argv[0] first)

  // tcpmux/NAME and tcpmux/+NAME entries (RFC 1078): served through the
  // tcpmux built-in, no socket of their own.
  bool tcpmux = false;
  bool tcpmux_plus = false;

  // unix sockets: owner, group and mode of the bound path
  // (FreeBSD's ":user:group:mode:" prefix on the service field).
  uid_t sock_uid = 0;
  gid_t sock_gid = 0;
  mode_t sock_mode = 0666;
};

struct ConfigError {
  std::string file;
  int line = 0;
  std::string field;     // "service", "socket-type", "protocol", "wait", "user" ...
  std::string message;
  std::string ToString() const;  // "FILE:LINE: FIELD: MESSAGE"
};

struct Config {
  std::vector<ServiceConfig> services;
  std::vector<ConfigError> errors;
};

struct ParseOptions {
  // -a: the default bind addresses (first IPv4 and first IPv6 result).
  std::optional<in_addr> bind4;
  std::optional<in6_addr> bind6;
  // Check that external programs exist and are executable (off in tests
  // that feed files naming programs this machine lacks).
  bool check_programs = true;
  // Resolve host names in OpenBSD-style "host:service" prefixes (off in the
  // fuzzer, which must not send DNS queries; literals always work).
  bool resolve_hosts = true;
};

// Parses the text of an inetd.conf. Never fails as a whole: every bad entry
// becomes one ConfigError and is skipped. Users, groups and service names are
// looked up here (NSS), so nothing needs a lookup between fork and exec.
Config ParseConfig(std::string_view text, const std::string& file, const ParseOptions& opts);

// Reads and parses `path`. Returns nullopt (and logs why) when the file
// cannot be read at all.
std::optional<Config> LoadConfig(const std::string& path, const ParseOptions& opts);

// Resolves -a's argument to its first IPv4 and first IPv6 address.
bool ResolveBindAddress(const std::string& host, ParseOptions& opts);

// "echo/tcp", "tftp/udp6": the name logs and the listener use.
std::string ServiceLabel(const ServiceConfig& s);

// True when two entries bind the same socket the same way, so a reload can
// keep it open (address, port, family, type, protocol, v6only, unix owner).
bool SameSocket(const ServiceConfig& a, const ServiceConfig& b);

}  // namespace inetd::priv
