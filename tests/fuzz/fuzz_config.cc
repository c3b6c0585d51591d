// libFuzzer target for the inetd.conf(5) parser (privileged/config.cc).
// Programs are not checked (the input names any path) and host names are not
// resolved (no DNS from a fuzzer); everything else runs as in the monitor.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "privileged/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace inetd::priv;
  ParseOptions opts;
  opts.check_programs = false;
  opts.resolve_hosts = false;
  Config c = ParseConfig(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", opts);
  for (const ConfigError& e : c.errors) (void)e.ToString();
  for (const ServiceConfig& s : c.services) {
    (void)ServiceLabel(s);
    if (!s.tcpmux && !SameSocket(s, s)) __builtin_trap();  // every socket is the same as itself
  }
  return 0;
}
