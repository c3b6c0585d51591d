// libFuzzer target for the service field of an inetd.conf entry
// (privileged/config.cc): names looked up in /etc/services through glibc's
// NSS, port numbers, tcpmux/NAME and tcpmux/+NAME, OpenBSD's "host:" prefix
// (literals only: no DNS from a fuzzer), and unix paths behind FreeBSD's
// ":user:group:mode:" prefix. The first byte picks the protocol, the socket
// type (unix) and the server; the rest is the field, quoted into one entry.
// Checked: the entry gives one error or its sockets, and each socket is what
// the field says: the port /etc/services or the number gives, the unix path.
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "privileged/config.h"

namespace {

using inetd::priv::ServiceConfig;

constexpr std::string_view kProtos[] = {"tcp",  "tcp4", "tcp6",  "tcp46", "udp",
                                        "udp4", "udp6", "udp46", "unix"};
constexpr std::string_view kUnixTypes[] = {"stream", "dgram", "seqpacket"};

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// The port a field that /etc/services does not name stands for: a plain
// decimal number, 1 to 65535 (0 when it is none).
uint16_t NumericPort(const std::string& name) {
  unsigned v = 0;
  const char* end = name.data() + name.size();
  auto [p, ec] = std::from_chars(name.data(), end, v);
  return ec == std::errc() && p == end && v <= 65535 ? static_cast<uint16_t>(v) : 0;
}

void CheckSocket(const ServiceConfig& s, std::string_view proto) {
  Check(!s.name.empty());
  if (s.tcpmux) {  // served through the tcpmux built-in: no socket
    Check(s.addrlen == 0 && s.ipproto == IPPROTO_TCP && !s.wait);
    return;
  }
  Check(SameSocket(s, s));
  if (s.family == AF_UNIX) {
    sockaddr_un sun{};
    Check(s.addrlen <= sizeof sun && s.name[0] == '/');
    memcpy(&sun, &s.addr, sizeof sun);
    Check(s.addrlen == offsetof(sockaddr_un, sun_path) + s.name.size() + 1);
    Check(std::string_view(sun.sun_path) == s.name);
    return;
  }
  uint16_t port = 0;
  if (s.family == AF_INET) {
    sockaddr_in sin{};
    Check(s.addrlen == sizeof sin);
    memcpy(&sin, &s.addr, sizeof sin);
    port = ntohs(sin.sin_port);
  } else {
    sockaddr_in6 sin6{};
    Check(s.family == AF_INET6 && s.addrlen == sizeof sin6);
    memcpy(&sin6, &s.addr, sizeof sin6);
    port = ntohs(sin6.sin6_port);
  }
  // tcp6/udp6 are IPv6 only; tcp46/udp46 take IPv4 too.
  Check(s.v6only == (s.family == AF_INET6 && !proto.ends_with("46")));
  Check(proto.starts_with("tcp") == (s.ipproto == IPPROTO_TCP));
  // The name wins over the number, as in FreeBSD.
  const servent* se = getservbyname(s.name.c_str(), s.ipproto == IPPROTO_TCP ? "tcp" : "udp");
  const uint16_t want =
      se != nullptr ? ntohs(static_cast<uint16_t>(se->s_port)) : NumericPort(s.name);
  Check(port != 0 && port == want);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const unsigned sel = data[0];
  const std::string_view proto = kProtos[sel % std::size(kProtos)];
  const bool external = (sel / std::size(kProtos)) % 2 != 0;
  const std::string_view type = proto == "unix"   ? kUnixTypes[sel / 18 % std::size(kUnixTypes)]
                                : proto[0] == 't' ? "stream"
                                                  : "dgram";
  const std::string_view field(reinterpret_cast<const char*>(data) + 1, size - 1);
  // One line, one field: quoted with a quote it does not hold.
  if (field.find_first_of("\r\n") != std::string_view::npos) return 0;
  const char quote = field.find('"') == std::string_view::npos ? '"' : '\'';
  if (field.find(quote) != std::string_view::npos) return 0;

  std::string entry;
  entry.append(1, quote).append(field).append(1, quote);
  entry.append(" ").append(type).append(" ").append(proto).append(" nowait root ");
  entry.append(external ? "/usr/libexec/fuzzd fuzzd -x\n" : "internal\n");

  inetd::priv::ParseOptions opts;
  opts.check_programs = false;
  opts.resolve_hosts = false;
  const inetd::priv::Config c = inetd::priv::ParseConfig(entry, "fuzz", opts);
  Check(c.errors.size() + (c.services.empty() ? 0 : 1) == 1);
  for (const inetd::priv::ConfigError& e : c.errors) Check(!e.ToString().empty());
  for (const ServiceConfig& s : c.services) {
    CheckSocket(s, proto);
    Check(s.internal != external && (!s.internal || !s.builtin.empty()));
  }
  return 0;
}
