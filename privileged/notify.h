// systemd's readiness protocol (sd_notify): one datagram of text to the
// socket named by $NOTIFY_SOCKET, when it is set.
#pragma once

namespace inetd::priv {

// Takes $NOTIFY_SOCKET out of the environment (services must not see it)
// and remembers it. Call once at start.
void NotifyInit();
// Sends `state` ("READY=1", "RELOADING=1", "STOPPING=1" ...). Best effort:
// a supervisor that is gone is not our failure.
void Notify(const char* state);

}  // namespace inetd::priv
