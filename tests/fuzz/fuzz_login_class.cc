// libFuzzer target for the login.conf(5) reader (spawner/login_class.cc).
// The input is the file. The classes "default", "daemon" and the input's
// first record name are resolved with and without a passwd entry; a failure
// must say why, and a class must be one Apply and execve can take.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "spawner/login_class.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace inetd::spawn;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const LoginConf db = ParseLoginConf(text, "fuzz");
  passwd pw{};
  pw.pw_name = const_cast<char*>("user");
  pw.pw_dir = const_cast<char*>("/home/user");
  const passwd* const users[] = {nullptr, &pw};
  const std::string first(text.substr(0, text.find_first_of(":|\n")));
  for (std::string_view name : {std::string_view("default"), std::string_view("daemon"),
                                std::string_view(first)}) {
    for (const passwd* who : users) {
      std::string msg;
      std::optional<LoginClass> lc = ResolveClass(db, name, who, msg);
      if (!lc) {
        if (msg.empty()) __builtin_trap();  // every refusal says why
        continue;
      }
      for (const Limit& l : lc->limits)
        if (l.value.rlim_cur > l.value.rlim_max) __builtin_trap();
      if (lc->priority && (*lc->priority < -20 || *lc->priority > 20)) __builtin_trap();
      if (lc->umask && *lc->umask > 0777) __builtin_trap();
      for (const std::string& e : lc->env) {
        const size_t eq = e.find('=');
        if (eq == 0 || eq == std::string::npos || e.find('\0') != std::string::npos)
          __builtin_trap();  // NAME=value, as execve takes it
      }
    }
  }
  return 0;
}
