// Command-line parsing for the monitor (see cli.h). Runs as root at start,
// on arguments the init system gave.
#include "privileged/cli.h"

#include <getopt.h>

#include <charconv>
#include <cstdio>
#include <cstring>

namespace inetd::priv {
namespace {

constexpr char kUsage[] =
    "usage: inetd [-dDltwW] [-a address] [-c maximum] [-C rate] [-L login.conf]\n"
    "             [-p pidfile] [-P prefixlen] [-R rate] [-s maximum] [-u user]\n"
    "             [configuration-file]\n";

bool Fail(const char* what, const char* value) {
  (void)fprintf(stderr, "inetd: %s: %s\n%s", what, value, kUsage);
  return false;
}

// A count in [0, 2^31): FreeBSD's atoi() would take "12abc"; we refuse it.
bool ParseCount(const char* s, int& out) {
  const char* end = s + strlen(s);
  auto [p, ec] = std::from_chars(s, end, out);
  return ec == std::errc() && p == end && p != s && out >= 0;
}

}  // namespace

bool ParseCommandLine(int argc, char* const argv[], Options& out) {
  optind = 1;
  opterr = 0;
  int ch;
  while ((ch = getopt(argc, argv, ":dDltwWa:c:C:L:p:P:R:s:u:")) != -1) {
    switch (ch) {
      case 'd': out.debug = true; break;
      case 'D': out.foreground = true; break;
      case 'l': out.log_connections = true; break;
      case 't': out.check_only = true; break;
      case 'w': out.wrap_external = true; break;
      case 'W': out.wrap_internal = true; break;
      case 'a': out.bind_address = optarg; break;
      case 'L': out.login_conf = optarg; break;
      case 'p': out.pidfile = optarg; out.pidfile_given = true; break;
      case 'u':
        if (*optarg == '\0') return Fail("empty user for -u", "");
        out.user = optarg;
        break;
      case 'c':
        if (!ParseCount(optarg, out.max_child)) return Fail("bad maximum for -c", optarg);
        break;
      case 'C':
        if (!ParseCount(optarg, out.per_ip_rate)) return Fail("bad rate for -C", optarg);
        break;
      case 'R':
        if (!ParseCount(optarg, out.invocations_per_min)) return Fail("bad rate for -R", optarg);
        break;
      case 's':
        if (!ParseCount(optarg, out.per_ip_child)) return Fail("bad maximum for -s", optarg);
        break;
      case 'P':
        if (!ParseCount(optarg, out.ipv6_prefix) || out.ipv6_prefix < 1 || out.ipv6_prefix > 128)
          return Fail("bad IPv6 prefix length for -P (1 to 128)", optarg);
        break;
      case ':': {
        char flag[3] = {'-', static_cast<char>(optopt), '\0'};
        return Fail("option needs a value", flag);
      }
      default: {
        char flag[3] = {'-', static_cast<char>(optopt), '\0'};
        return Fail("unknown option", flag);
      }
    }
  }
  if (argc - optind > 1) return Fail("more than one configuration file", argv[optind + 1]);
  if (argc - optind == 1) out.config = argv[optind];
  return true;
}

std::string PidfilePath(const Options& o) {
  if (o.pidfile_given) return o.pidfile;
  return o.debug ? std::string() : std::string("/var/run/inetd.pid");
}

}  // namespace inetd::priv
