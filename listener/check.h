// `inetd-listener --check-hosts`, run by `inetd -t -w` (or -W) as the
// listener's user: the hosts_access files parsed by the same code that
// serves, every problem printed as FILE:LINE: MESSAGE. Exit 0 if none.
#pragma once

namespace inetd::listener {

int CheckHostsFiles();

}  // namespace inetd::listener
