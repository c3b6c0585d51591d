// The lookup helper: host names (reverse, then forward check) and RFC 1413
// user names for hosts_access(5), in a process of its own, so that NSS and
// ident never block the listener's event loop and never run under its
// filter. One LookupRequest in, exactly one LookupReply out, by its deadline.
#pragma once

#include "proto/fd.h"

namespace inetd::listener {

// Forks the resolver. Called by inetd-listener's main() before it installs
// its own seccomp filter (as the unprivileged user, no capabilities,
// no_new_privs already set by the monitor). Returns the listener's end of a
// SOCK_SEQPACKET socketpair (CLOEXEC, NONBLOCK), or an invalid fd (logged)
// if it cannot start; the listener then treats every lookup as failed.
UniqueFd StartResolver();

// The resolver's body (in the child): serves requests on `fd` until the
// listener closes it; exported for tests. Returns the exit status.
int RunResolver(int fd);

// The resolver's deny-list seccomp filter (default allow; see the table in
// resolver.cc): no_new_privs, then the filter. False if it could not be
// loaded. Exported for tests.
bool InstallResolverPolicy();


}  // namespace inetd::listener
