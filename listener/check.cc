// inetd -t for the hosts_access files (see check.h). Not sandboxed: a
// one-shot run by the administrator, reading files as the -u user.
#include "listener/check.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "listener/hosts_access.h"
#include "proto/paths.h"

namespace inetd::listener {
namespace {

// A missing file is an empty one (a missing list matches nothing: said
// when `list`); one that cannot be read is an error.
bool Read(const std::string& path, bool list, std::optional<std::string>* text, int* errors) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) {
      if (list) (void)fprintf(stderr, "%s: no such list: it matches nothing\n", path.c_str());
      return false;
    }
    (void)fprintf(stderr, "%s: %s\n", path.c_str(), strerror(errno));
    ++*errors;
    return false;
  }
  std::ostringstream s;
  s << in.rdbuf();
  *text = s.str();
  return true;
}

}  // namespace

int CheckHostsFiles() {
  int errors = 0;
  std::optional<std::string> allow, deny;
  bool has_allow = Read(kHostsAllow, false, &allow, &errors);
  bool has_deny = Read(kHostsDeny, false, &deny, &errors);
  HostsLists lists;
  HostsPolicy p;
  // /path lists name further lists: read what is missing, to the bound.
  for (int depth = 0; depth <= kHostsMaxListDepth + 1; ++depth) {
    p = HostsPolicy::Compile(HostsText{kHostsAllow, has_allow, allow.value_or("")},
                             HostsText{kHostsDeny, has_deny, deny.value_or("")}, lists);
    if (p.MissingLists().empty()) break;
    for (const std::string& path : p.MissingLists()) {
      std::optional<std::string> text;
      Read(path, true, &text, &errors);
      lists[path] = text;
    }
  }
  for (const HostsError& e : p.errors()) (void)fprintf(stderr, "%s\n", e.ToString().c_str());
  errors += static_cast<int>(p.errors().size());
  (void)printf("%s, %s: %zu rules, %d errors\n", kHostsAllow, kHostsDeny, p.rules().size(), errors);
  return errors == 0 ? 0 : 1;
}

}  // namespace inetd::listener
