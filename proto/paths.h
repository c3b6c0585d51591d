// Files both programs name: the monitor reads them for the listener
// (privileged/hosts_files.cc); `inetd -t` has the listener program parse
// them (listener/check.cc).
#pragma once

namespace inetd {

inline constexpr const char* kHostsAllow = "/etc/hosts.allow";
inline constexpr const char* kHostsDeny = "/etc/hosts.deny";

}  // namespace inetd
