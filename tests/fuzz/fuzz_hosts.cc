// libFuzzer target for the hosts_access(5) parser and matcher
// (listener/hosts_*.cc). The input is split at NUL bytes into hosts.allow,
// hosts.deny, the contents of the lists "/l" and "/m", and a request; the
// policy is compiled and asked about that request in every lookup state.
// Checks, besides "no crash, no sanitizer report":
// - a lookup is asked for only if the policy said it might need it;
// - answering every lookup always ends in a decision;
// - a decision names a rule of this policy, and its commands expand.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "listener/hosts_access.h"

using namespace inetd::listener;

namespace {

std::vector<std::string_view> Split(std::string_view s, size_t max) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < max) {
    size_t z = s.find('\0');
    if (z == std::string_view::npos) break;
    out.push_back(s.substr(0, z));
    s.remove_prefix(z + 1);
  }
  out.push_back(s);
  while (out.size() < max) out.emplace_back();
  return out;
}

const char* const kAddrs[] = {"192.168.1.10", "10.0.0.1", "::1", "2001:db8::5", "::ffff:10.0.0.1",
                              "255.255.255.255", "0.0.0.0"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> part = Split(in, 6);
  HostsLists lists;
  lists["/l"] = std::string(part[2]);
  lists["/m"] = std::string(part[3]);
  HostsPolicy p = HostsPolicy::Compile(HostsText{"hosts.allow", true, part[0]},
                                       HostsText{"hosts.deny", !part[1].empty(), part[1]}, lists);
  for (const HostsError& e : p.errors()) (void)e.ToString();

  // The request: names from part 4 (daemon, client name, user, server
  // name, separated by blanks), addresses chosen by its bytes.
  std::vector<std::string_view> f = Split(part[4], 4);
  std::string_view r5 = part[5];
  uint8_t sel = r5.empty() ? 0 : static_cast<uint8_t>(r5[0]);
  HostsRequest req;
  req.daemon = f[0];
  req.client.addr = *HostAddr::Parse(kAddrs[sel % 7]);
  req.server.addr = *HostAddr::Parse(kAddrs[(sel / 7) % 7]);
  req.client.netgroups = sel;
  req.server.netgroups = sel >> 3;

  const Lookup kStates[] = {Lookup::kFailed, Lookup::kParanoid, Lookup::kFound};
  for (Lookup cs : kStates) {
    for (Lookup us : {Lookup::kFailed, Lookup::kFound}) {
      HostsRequest q = req;
      q.client.name_state = q.server.name_state = q.user_state = Lookup::kNotDone;
      HostsVerdict v;
      // Answer lookups as they are asked for; at most one of each kind.
      for (int round = 0; round < 4; ++round) {
        v = p.Check(q);
        if (v.kind != HostsVerdict::Kind::kNeedLookup) break;
        if ((p.PossibleNeeds() & v.need) == 0) __builtin_trap();
        if (v.need == kNeedClientName) {
          q.client.name_state = cs;
          q.client.name = f[1];
        } else if (v.need == kNeedServerName) {
          q.server.name_state = cs == Lookup::kParanoid ? Lookup::kFailed : cs;
          q.server.name = f[3];
        } else if (v.need == kNeedUser) {
          q.user_state = us;
          q.user = f[2];
        } else {
          __builtin_trap();
        }
      }
      if (v.kind == HostsVerdict::Kind::kNeedLookup) __builtin_trap();
      if (v.rule) {
        if (v.rule < p.rules().data() || v.rule >= p.rules().data() + p.rules().size()) __builtin_trap();
        for (const HostsOption& o : v.rule->options) {
          (void)ExpandPercent(o.value, q, 1234);
          (void)ExpandOption(o.value, q, 1234);
          (void)PercentNeeds(o.value);
        }
      }
    }
  }
  // The option parser on its own, on raw input.
  std::vector<HostsOption> opts;
  std::string err;
  (void)ParseHostsOptions(part[5], &opts, &err);
  (void)ExpandPercent(part[5], req, 1);
  (void)SanitizeName(part[4]);
  (void)HostAddr::Parse(part[4]);
  return 0;
}
