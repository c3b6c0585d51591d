// LD_PRELOAD shim for the differential test: makes Debian's tcpdmatch
// hermetic and talkative.
// - No DNS: name lookups fail at once (numeric parsing still works), so a
//   server given as an address has the name "unknown", as a client given as
//   an address always has; netgroups have no members.
// - libwrap's syslog lines ("matched: hosts.allow line N", "option: ...",
//   "error: ...") go to stderr, so the test can compare the matched rule and
//   the expanded commands, not only the decision.
#include <netdb.h>
#include <dlfcn.h>

#include <cstdarg>
#include <cstdio>

extern "C" {

int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints, struct addrinfo** res) {
  using Fn = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "getaddrinfo"));
  struct addrinfo h = {};
  if (hints) h = *hints;
  h.ai_flags |= AI_NUMERICHOST;
  return real(node, service, &h, res);
}

int getnameinfo(const struct sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                socklen_t servlen, int flags) {
  using Fn = int (*)(const struct sockaddr*, socklen_t, char*, socklen_t, char*, socklen_t, int);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "getnameinfo"));
  if (host && !(flags & NI_NUMERICHOST)) return EAI_NONAME;
  return real(sa, salen, host, hostlen, serv, servlen, flags);
}

struct hostent* gethostbyname(const char*) { return nullptr; }
struct hostent* gethostbyaddr(const void*, socklen_t, int) { return nullptr; }
int innetgr(const char*, const char*, const char*, const char*) { return 0; }

// glibc's names for syslog and vsyslog under _FORTIFY_SOURCE: what libwrap calls.
// NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): glibc's symbol
void __vsyslog_chk(int, int, const char* fmt, va_list ap) {
  (void)std::fputs("LOG: ", stderr);
  (void)std::vfprintf(stderr, fmt, ap);
  (void)std::fputc('\n', stderr);
}
// NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): glibc's symbol
void __syslog_chk(int pri, int flag, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  __vsyslog_chk(pri, flag, fmt, ap);
  va_end(ap);
}

}  // extern "C"
