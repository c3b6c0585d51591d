// Logging shared by the monitor and the listener (see log.h).
#include "proto/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace inetd {
namespace {

int g_stderr = STDERR_FILENO;
bool g_syslog = false;
bool g_stderr_on = true;
bool g_debug = false;

void StderrAndSyslog(int priority, std::string_view text) {
  if (g_syslog) syslog(priority, "%.*s", static_cast<int>(text.size()), text.data());
  if (g_stderr_on && g_stderr >= 0) {
    char line[1100];
    int n = snprintf(line, sizeof line, "inetd[%d]: %.*s\n", static_cast<int>(getpid()),
                     static_cast<int>(text.size() > 1024 ? 1024 : text.size()), text.data());
    if (n > 0) {
      ssize_t w = write(g_stderr, line, static_cast<size_t>(n) < sizeof line ? n : sizeof line - 1);
      (void)w;
    }
  }
}

LogSink g_sink = StderrAndSyslog;

void VLog(int priority, const char* fmt, va_list ap) {
  if ((priority & LOG_PRIMASK) == LOG_DEBUG && !g_debug) return;
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0) return;
  g_sink(priority, std::string_view(buf, static_cast<size_t>(n) < sizeof buf ? n : sizeof buf - 1));
}

}  // namespace

void SetLogSink(LogSink sink) { g_sink = sink; }

void LogToSyslog(const char* ident, bool to_stderr, bool debug) {
  openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
  g_syslog = true;
  g_debug = debug;
  g_stderr_on = to_stderr;
  // A private copy: fd 2 is replaced by a service's socket in spawned children.
  g_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  g_stderr_on = to_stderr && g_stderr >= 0;
  g_sink = StderrAndSyslog;
}

void SetLogStderr(bool on) {
  g_stderr_on = on && g_stderr >= 0;
  // Off for good: let go of the caller's terminal or pipe, so whoever
  // started a detaching inetd and reads its output is not kept waiting.
  if (!on && g_stderr > STDERR_FILENO) {
    close(g_stderr);
    g_stderr = -1;
  }
}
void SetLogDebug(bool on) { g_debug = on; }
bool LogDebugEnabled() { return g_debug; }

// NOLINTNEXTLINE(cert-dcl50-cpp): printf-style, checked by -Wformat (see log.h)
void Log(int priority, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  VLog(priority, fmt, ap);
  va_end(ap);
}

// NOLINTNEXTLINE(cert-dcl50-cpp): printf-style, checked by -Wformat (see log.h)
void Die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  VLog(LOG_ERR, fmt, ap);
  va_end(ap);
  _exit(EXIT_FAILURE);
}

// NOLINTNEXTLINE(cert-dcl50-cpp): printf-style, checked by -Wformat (see log.h)
void Bug(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  VLog(LOG_CRIT, fmt, ap);
  va_end(ap);
  abort();
}

}  // namespace inetd
