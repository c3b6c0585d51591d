// The two pieces of hosts_options(5) the monitor does itself (see
// hosts_files.cc): finding a rule's options in its own copy of a hosts file,
// and %-expansion with libwrap's sanitizing.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace inetd::priv {

// The options of the rule whose first physical line is `line`: its logical
// line (continuations joined), after its second ':' outside [brackets],
// split at each ':' not escaped by '\'; each one a keyword (lower-cased)
// and its value after blanks or '=', as libwrap reads them.
std::vector<std::pair<std::string, std::string>> RuleOptions(const std::string& text,
                                                             uint32_t line);

// What %-sequences expand to: addresses and ports from the kernel, names
// as the listener looked them up (untrusted: sanitized like the rest).
struct Expansions {
  std::string client, server, client_port, server_port, client_name, user, daemon;
};

// libwrap's percent_x: each expansion has every byte outside its safe set
// replaced by '_' before any shell sees it; the administrator's text is kept.
std::string Expand(const std::string& cmd, const Expansions& x);

}  // namespace inetd::priv
