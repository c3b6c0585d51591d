// Logging for every process. The monitor writes to syslog and, with -d, to
// stderr; the listener installs a sink that sends Log records to the monitor.
// Die() is for the environment failing, Bug() for a broken invariant: both
// log and exit, in every build.
#pragma once

#include <syslog.h>

#include <string_view>

namespace inetd {

using LogSink = void (*)(int priority, std::string_view text);

// Where log lines go. The default sink writes to stderr.
void SetLogSink(LogSink sink);
// The monitor's sinks: syslog (facility daemon) and, if `to_stderr`, a copy
// of stderr taken now (fd 2 itself is given away to services' sockets).
void LogToSyslog(const char* ident, bool to_stderr, bool debug);
// Whether lines are copied to stderr (on until the monitor detaches).
void SetLogStderr(bool on);
// Whether LOG_DEBUG lines are wanted (-d).
void SetLogDebug(bool on);
bool LogDebugEnabled();

void Log(int priority, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
[[noreturn]] void Die(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void Bug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace inetd
