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

// Sets or clears O_NONBLOCK (shared by every copy of the socket).
Result<void> SetNonBlocking(int fd, bool on);

// socket(), options, bind(), listen() for one service. CLOEXEC always;
// SO_REUSEADDR; IPV6_V6ONLY as the protocol says; unix paths get their
// owner and mode without a chmod-by-path race.
// Takes over a socket the init system passed, when it is bound to this
// service's address and type; else binds a new one.
Result<UniqueFd> BindService(const ServiceConfig& s);

// Socket activation: keeps the fds systemd passed ($LISTEN_PID is us,
// $LISTEN_FDS from fd 3) for BindService, and clears the variables.
void TakeActivatedSockets();
// Closes the passed sockets no service took, naming each in the log.
void CloseUnusedActivatedSockets();

}  // namespace inetd::priv
