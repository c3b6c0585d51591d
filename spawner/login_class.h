// Login classes: FreeBSD's login.conf(5) on Linux. The monitor (root) reads
// the database, a file only root can write, and resolves each service's
// class into a LoginClass at load; the child applies it between fork and exec.
#pragma once

#include <pwd.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.h"

namespace inetd::spawn {

constexpr char kDefaultPath[] = "/usr/bin:/bin:/usr/sbin:/sbin";

struct Limit {
  int resource;      // RLIMIT_*
  rlimit value;      // both halves resolved: the child reads nothing
  const char* name;  // login.conf's, for messages
};

// A class as the child needs it, resolved and checked by the monitor.
struct LoginClass {
  std::string name;                 // the record used; "" without a file
  std::vector<Limit> limits;
  std::optional<int> priority = 0;  // nice; nullopt: "inherit"
  std::optional<mode_t> umask;      // nullopt: inherited
  std::vector<std::string> env = {std::string("PATH=") + kDefaultPath};  // for Plan::env
};

// The database as read: getcap(3) records, continuation lines joined.
struct LoginConf {
  struct Record {
    int line;  // where it starts
    std::string text;
  };
  std::string file;   // empty: there is no file, so no class has limits
  std::string error;  // set: the file is refused, and so is every class
  std::vector<Record> records;
};

// A missing file gives a LoginConf without one; a file that cannot be read,
// or that anyone but root could write, one with an error.
LoginConf ReadLoginConf(const std::string& path);
LoginConf ParseLoginConf(std::string_view text, const std::string& file);

// The class `name` for the user `pw` (its home and name replace ~ and $; may
// be null). A class the file lacks falls back to "default", as FreeBSD's
// login_getclass does. Returns nullopt with the reason in `msg`, or the class
// with any warnings in `msg`.
std::optional<LoginClass> ResolveClass(const LoginConf& db, std::string_view name,
                                       const passwd* pw, std::string& msg);

// In the child, as root: resource limits, priority, umask. Async-signal-safe
// and allocation-free.
Result<void> Apply(const LoginClass& lc);

}  // namespace inetd::spawn
