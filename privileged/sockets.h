// Binding the services' sockets: the reason the monitor is root.
#pragma once

#include "privileged/config.h"
#include "proto/fd.h"
#include "proto/result.h"

namespace inetd::priv {

// Whether the listener accepts on this socket itself (nowait stream and
// seqpacket, and every internal service). Only those sockets are
// non-blocking; a socket handed to a child is left blocking, as daemons
// written for inetd expect.
bool ListenerAccepts(const ServiceConfig& s);

// socket(), options, bind(), listen() for one service. CLOEXEC always;
// SO_REUSEADDR; IPV6_V6ONLY as the protocol says; unix paths get their
// owner and mode without a chmod-by-path race.
Result<UniqueFd> BindService(const ServiceConfig& s);

}  // namespace inetd::priv
