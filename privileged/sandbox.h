// The monitor's own confinement, applied once after start-up. It cannot be
// tight (the monitor forks, binds and execs arbitrary daemons), but what no
// inetd ever needs is taken away for good.
#pragma once

namespace inetd::priv {

// Drops capabilities (see sandbox.cc) and loads a seccomp deny list. Both
// are inherited by every service the monitor spawns, by design. Returns
// false (and logs why) if either could not be applied.
bool SandboxMonitor();

}  // namespace inetd::priv
