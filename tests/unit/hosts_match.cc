// hosts_match: this project's answer to `tcpdmatch -d`, for the differential
// test (tcpdmatch_diff_test.py). Reads hosts.allow and hosts.deny from DIR
// (and the /path lists they name, from the file system), then one query per
// line on stdin, in tcpdmatch's argument form:
//
//   daemon[@server] [user@]client
//
// where server and client are an address, "unknown" or "paranoid"; names are
// never looked up, as tcpdmatch does not look up a client given as an
// address. Prints one line per query:
//
//   granted|denied|delegated allow|deny|none LINE
//   option: spawn|twist EXPANDED        (for the matched rule, if any)
//   end
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "listener/hosts_access.h"

using namespace inetd::listener;

namespace {

std::optional<std::string> Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "unknown", "paranoid" or an address, as tcpdmatch reads a host argument.
bool SetHost(const std::string& s, HostsEndpoint* e) {
  e->name_state = Lookup::kFailed;
  if (s == "unknown") return true;
  if (s == "paranoid") {
    e->name_state = Lookup::kParanoid;
    return true;
  }
  auto a = HostAddr::Parse(s);
  if (!a) return false;
  e->addr = *a;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: hosts_match DIR < queries\n";
    return 2;
  }
  std::string dir = argv[1];
  std::optional<std::string> allow = Slurp(dir + "/hosts.allow");
  std::optional<std::string> deny = Slurp(dir + "/hosts.deny");
  HostsText a{"hosts.allow", allow.has_value(), allow ? std::string_view(*allow) : std::string_view()};
  HostsText d{"hosts.deny", deny.has_value(), deny ? std::string_view(*deny) : std::string_view()};

  // What the monitor would do: read the lists the policy names, compile
  // again, until nothing is missing.
  HostsLists lists;
  HostsPolicy policy = HostsPolicy::Compile(a, d, lists);
  for (int round = 0; round < 16 && !policy.MissingLists().empty(); ++round) {
    for (const std::string& p : policy.MissingLists()) lists[p] = Slurp(p);
    policy = HostsPolicy::Compile(a, d, lists);
  }
  if (getenv("HOSTS_MATCH_ERRORS"))
    for (const HostsError& e : policy.errors()) std::cerr << e.ToString() << "\n";

  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream q(line);
    std::string daemon_arg, client_arg;
    q >> daemon_arg >> client_arg;
    HostsRequest req;
    std::string daemon = daemon_arg, server = "unknown", user, client = client_arg;
    if (size_t at = daemon_arg.find('@'); at != std::string::npos) {
      daemon = daemon_arg.substr(0, at);
      server = daemon_arg.substr(at + 1);
    }
    if (size_t at = client_arg.find('@'); at != std::string::npos) {
      user = client_arg.substr(0, at);
      client = client_arg.substr(at + 1);
    }
    req.daemon = daemon;
    req.user_state = user.empty() ? Lookup::kFailed : Lookup::kFound;
    req.user = user;
    if (!SetHost(server, &req.server) || !SetHost(client, &req.client)) {
      std::cout << "error bad-query 0\nend" << std::endl;
      continue;
    }
    HostsVerdict v = policy.Check(req);
    if (v.kind == HostsVerdict::Kind::kNeedLookup) {
      // Every name was given as failed: a lookup request is a bug.
      std::cout << "error need-lookup 0\nend" << std::endl;
      continue;
    }
    const char* verdict = v.Twist() ? "delegated" : v.kind == HostsVerdict::Kind::kAllow ? "granted" : "denied";
    // tcpdmatch names no rule for the end of a broken file.
    const HostsRule* r = v.rule && !v.rule->broken ? v.rule : nullptr;
    const char* table = !r ? "none" : r->table == HostsTable::kAllow ? "allow" : "deny";
    std::cout << verdict << " " << table << " " << (r ? r->last_line : 0) << "\n";
    if (r && !r->bad_options) {
      for (const HostsOption& o : r->options) {
        if (o.kind != HostsOptionKind::kSpawn && o.kind != HostsOptionKind::kTwist) continue;
        auto e = ExpandOption(o.value, req, 0);
        std::cout << "option: " << (o.kind == HostsOptionKind::kSpawn ? "spawn " : "twist ")
                  << (e ? *e : std::string("<too long>")) << "\n";
      }
    }
    std::cout << "end" << std::endl;
  }
  return 0;
}
